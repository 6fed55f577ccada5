package devstack

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/second-inc/second-release/internal/local/state"
)

// InfoFile is the file at the worktree root that agents and browser
// automation read to find the running stack.
const InfoFile = ".second-dev.txt"

// DataDirName is the worktree's data dir (mongo, redis, logs, secrets).
const DataDirName = ".second-dev"

// Info is what InfoFile says: key=value, one per line.
type Info struct {
	URL                  string
	WebPort, WorkerPort  int
	MongoPort, RedisPort int
	DevID                string
	DataDir              string
}

// Marshal renders the file's content in a fixed order.
func (i Info) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "url=%s\nweb_port=%d\nworker_port=%d\nmongo_port=%d\nredis_port=%d\ndev_id=%s\ndata_dir=%s\n",
		i.URL, i.WebPort, i.WorkerPort, i.MongoPort, i.RedisPort, i.DevID, i.DataDir)
	return b.Bytes()
}

// WriteInfo replaces path atomically, so a reader never sees half a file.
func WriteInfo(path string, i Info) error {
	return state.WriteFileAtomic(path, i.Marshal(), 0o644)
}

// ReadInfo parses path; unknown keys are ignored.
func ReadInfo(path string) (Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	var i Info
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(v)
		switch k {
		case "url":
			i.URL = v
		case "web_port":
			i.WebPort = n
		case "worker_port":
			i.WorkerPort = n
		case "mongo_port":
			i.MongoPort = n
		case "redis_port":
			i.RedisPort = n
		case "dev_id":
			i.DevID = v
		case "data_dir":
			i.DataDir = v
		}
	}
	return i, nil
}
