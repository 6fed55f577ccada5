// Package nativesmirror gives release-side tests a stand-in natives mirror
// (internal/release/natives/standin) for the host: archives shaped like the
// upstream ones, made from the redis-server scripts/standin-natives builds,
// the host's OpenSSL 3 and the test mongod. Kept apart from testsupport so
// the runtime's tests never pull in release packages.
package nativesmirror

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/natives/standin"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// RedisEnv overrides where the stand-in's redis-server comes from.
const RedisEnv = "SECOND_TEST_STANDIN_REDIS"

// BuiltRedis is the redis-server scripts/standin-natives built and cached
// in the release cache under standin/redis-<Debian source version>/ (the
// newest one), or $SECOND_TEST_STANDIN_REDIS. Missing: skip locally, fail in CI.
func BuiltRedis(t testing.TB) (bin, origin string) {
	t.Helper()
	if p := os.Getenv(RedisEnv); p != "" {
		return p, p
	}
	var dirs []string
	if cache, err := home.ReleaseCacheDir(); err == nil {
		dirs, _ = filepath.Glob(filepath.Join(cache, "standin", "redis-*", "redis-server"))
	}
	sort.Slice(dirs, func(i, j int) bool { return modTime(dirs[i]) > modTime(dirs[j]) })
	if len(dirs) == 0 {
		msg := "needs the stand-in redis-server built from Debian's redis source: run scripts/standin-natives (scripts/setup does), or set " + RedisEnv
		if testsupport.InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	origin = "Debian source redis " + strings.TrimPrefix(filepath.Base(filepath.Dir(dirs[0])), "redis-")
	return dirs[0], origin
}

func modTime(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.ModTime().UnixNano()
}

// Synthesize writes a stand-in mirror for the host platform into a temp dir:
// the result's Mirror is for SECOND_RELEASE_MIRROR, LocksDir for
// --natives-locks. Skips when the host is not Linux or a piece is missing
// (redis-server build, mongod, patchelf).
func Synthesize(t testing.TB) *standin.Result {
	t.Helper()
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("stand-in natives are synthesized on linux-x64 and linux-arm64 hosts only")
	}
	redis, origin := BuiltRedis(t)
	mongod := testsupport.MongodPath(t)
	patchelf := testsupport.Tool(t, "patchelf")
	root := testsupport.RepoRoot(t)
	res, err := standin.Synthesize(context.Background(), standin.Options{
		Dir:         t.TempDir(),
		Platform:    host,
		RedisServer: redis,
		RedisOrigin: origin,
		Mongod:      mongod,
		BaseLock:    natives.LockPath(root, host.ID),
		Patchelf:    patchelf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	return res
}
