package listeners

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/second-inc/second-release/internal/local/procutil"
)

// ofPIDs maps each pid's socket inodes (/proc/<pid>/fd -> "socket:[N]") to
// the LISTEN entries of /proc/net/tcp and tcp6.
func ofPIDs(pids []int) ([]Listener, error) {
	owner := map[string]int{} // inode -> pid
	for _, pid := range pids {
		for _, ino := range procutil.SocketInodes(pid) {
			owner[ino] = pid
		}
	}
	var out []Listener
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		ls, err := parse(f, owner)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// parse reads one /proc/net/tcp{,6} table: "sl local_address rem_address
// st ... inode", addresses as hex IP (host byte order per 32-bit word):hex port.
func parse(path string, owner map[string]int) ([]Listener, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Listener
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != "0A" { // 0A = TCP_LISTEN
			continue
		}
		pid, ok := owner[fs[9]]
		if !ok {
			continue
		}
		ip, port, err := parseAddr(fs[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Listener{PID: pid, Addr: ip, Port: port})
	}
	return out, sc.Err()
}

func parseAddr(s string) (net.IP, int, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad port in %q", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, 0, fmt.Errorf("bad ip in %q", s)
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), int(port), nil
}
