package natives

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/binarycheck"
)

// updateWorld publishes, next to the world's file server and registry, a
// MongoDB feed and a Homebrew formula API whose entries point at real
// archives, so Update has to open them to learn their member names.
type updateWorld struct {
	*world
	feed     map[string]any
	formulas map[string]any
	api      *httptest.Server
}

func newUpdateWorld(t *testing.T) *updateWorld {
	u := &updateWorld{world: newWorld(t), formulas: map[string]any{}}
	u.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/full.json":
			json.NewEncoder(w).Encode(u.feed)
		case strings.HasPrefix(r.URL.Path, "/api/formula/"):
			f, ok := u.formulas[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/formula/"), ".json")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(f)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(u.api.Close)
	return u
}

func release(version string, production bool, archives ...[2]string) map[string]any {
	var dl []map[string]any
	for _, a := range archives {
		dl = append(dl, map[string]any{"archive": map[string]string{"url": a[0], "sha256": a[1]}})
	}
	return map[string]any{"version": version, "production_release": production, "downloads": dl}
}

func bottleFormula(stable string, revision int, tag, sha string) map[string]any {
	return map[string]any{"versions": map[string]string{"stable": stable}, "revision": revision,
		"bottle": map[string]any{"stable": map[string]any{"files": map[string]any{
			tag: map[string]string{"url": "https://ghcr.io/v2/homebrew/core/x/blobs/sha256:" + sha, "sha256": sha}}}}}
}

func (u *updateWorld) opts(t *testing.T, lockPath string) UpdateOptions {
	return UpdateOptions{LockPath: lockPath, MongoFeed: u.api.URL + "/full.json", BrewAPI: u.api.URL + "/api/formula",
		CacheDir: t.TempDir(), Retry: fastRetry(),
		Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }}
}

// TestUpdateReadsMemberNamesFromArchives moves a darwin-arm64 lock from an
// 8.0 archive whose folder is mongodb-macos-aarch64-8.0.11/ to 8.2 archives
// named the newer way (mongodb-macos-aarch64--8.2.9/), and a Homebrew
// bottle to a version with a revision suffix, dry run first.
func TestUpdateReadsMemberNamesFromArchives(t *testing.T) {
	u := newUpdateWorld(t)
	reg := hostOf(u.reg)
	oldMongo := tgzOf(t, []member{{name: "mongodb-macos-aarch64-8.0.11/bin/mongod", body: "old", exec: true}})
	newMongo := tgzOf(t, []member{
		{name: "mongodb-macos-aarch64--8.2.9/LICENSE-Community.txt", body: "SSPL"},
		{name: "mongodb-macos-aarch64--8.2.9/bin/mongod", body: "new", exec: true},
		{name: "mongodb-macos-aarch64--8.2.9/bin/mongos", body: "mongos", exec: true},
	})
	rc := tgzOf(t, []member{{name: "mongodb-macos-aarch64-8.2.10-rc0/bin/mongod", body: "rc", exec: true}})
	oldRedis := tgzOf(t, []member{{name: "redis/8.6.2/bin/redis-server", body: "old", exec: true}})
	newRedis := tgzOf(t, []member{
		{name: "redis/8.10.0_1/bin/redis-server", body: "new", exec: true},
		{name: "redis/8.10.0_1/bin/redis-cli", body: "cli", exec: true},
		{name: "redis/8.10.0_1/.brew/redis.rb", body: "class Redis"},
	})
	newRedisSrc := push(t, reg, "homebrew/core/redis", newRedis)

	u.feed = map[string]any{"versions": []any{
		release("8.2.10-rc0", false, [2]string{u.serve("/osx/mongodb-macos-arm64-8.2.10-rc0.tgz", rc), sum(rc)}),
		release("8.2.9", true,
			[2]string{u.serve("/osx/mongodb-macos-arm64-8.2.9.tgz", newMongo), sum(newMongo)},
			[2]string{u.http.URL + "/osx/mongodb-macos-x86_64-8.2.9.tgz", sha("3")}),
		release("8.2.8", true, [2]string{u.http.URL + "/osx/mongodb-macos-arm64-8.2.8.tgz", sha("5")}),
		release("9.0.1", true, [2]string{u.http.URL + "/osx/mongodb-macos-arm64-9.0.1.tgz", sha("1")}), // other series
	}}
	u.formulas["redis"] = bottleFormula("8.10.0", 1, "arm64_sonoma", sum(newRedis))

	l := &Lock{Schema: 1, Platform: "darwin-arm64", Floors: binarycheck.Floors{MacOS: "14.0"}, Natives: []Native{
		{Name: "mongod", Version: "8.0.11", Source: u.serve("/osx/mongodb-macos-arm64-8.0.11.tgz", oldMongo), SHA256: sum(oldMongo),
			Members: map[string]string{"mongodb-macos-aarch64-8.0.11/bin/mongod": "bin/mongod"}, PinSource: "test", Track: "mongodb:8.2"},
		{Name: "redis", Version: "8.6.2", Source: push(t, reg, "homebrew/core/redis", oldRedis), SHA256: sum(oldRedis),
			Members: map[string]string{"redis/8.6.2/bin/redis-server": "bin/redis-server"}, PinSource: "test", Track: "homebrew:redis:arm64_sonoma"},
		{Name: "fixed", Version: "1", Source: "https://example.invalid/f.tgz", SHA256: sha("9"),
			Members: map[string]string{"f/bin/f": "bin/f"}, PinSource: "test"},
	}}
	lockPath := writeLock(t, l)
	before, _ := os.ReadFile(lockPath)
	opts := u.opts(t, lockPath)

	opts.DryRun = true
	changes, err := Update(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 ||
		changes[0].Name != "mongod" || changes[0].To != "8.2.9" || changes[0].Members["mongodb-macos-aarch64--8.2.9/bin/mongod"] != "bin/mongod" ||
		changes[1].Name != "redis" || changes[1].To != "8.10.0_1" || changes[1].Members["redis/8.10.0_1/bin/redis-server"] != "bin/redis-server" {
		t.Fatalf("dry run changes: %+v", changes)
	}
	if after, _ := os.ReadFile(lockPath); string(after) != string(before) {
		t.Fatal("dry run wrote the lock")
	}

	opts.DryRun = false
	if _, err := Update(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	checkMovedToNewArchives(t, got, u.http.URL+"/osx/mongodb-macos-arm64-8.2.9.tgz", sum(newMongo), newRedisSrc)

	// Up to date: nothing changes, nothing is written.
	before, _ = os.ReadFile(lockPath)
	changes, err = Update(context.Background(), opts)
	if err != nil || len(changes) != 0 {
		t.Fatalf("second update: %v %+v", err, changes)
	}
	if after, _ := os.ReadFile(lockPath); string(after) != string(before) {
		t.Fatal("no-op update rewrote the lock")
	}
}

// checkMovedToNewArchives checks the lock after the real update: mongod and
// redis point at the new archives and their member names, the untracked pin stays.
func checkMovedToNewArchives(t *testing.T, got *Lock, mongoSource, mongoSum, redisSource string) {
	t.Helper()
	m, r := got.Natives[0], got.Natives[1]
	if m.Version != "8.2.9" || m.SHA256 != mongoSum || m.Source != mongoSource ||
		len(m.Members) != 1 || m.Members["mongodb-macos-aarch64--8.2.9/bin/mongod"] != "bin/mongod" || !strings.Contains(m.PinSource, "full.json") {
		t.Errorf("mongod: %+v", m)
	}
	if r.Version != "8.10.0_1" || r.Source != redisSource || len(r.Members) != 1 || r.Members["redis/8.10.0_1/bin/redis-server"] != "bin/redis-server" ||
		!strings.Contains(r.PinSource, "2026-11-27") {
		t.Errorf("redis: %+v", r)
	}
	if got.Natives[2].Version != "1" {
		t.Errorf("untracked pin moved: %+v", got.Natives[2])
	}
}

// The other direction: a double-dash pin moves to an archive named with a
// single dash, and an archive without the member is refused naming what
// it does hold.
func TestUpdateSingleDashAndMissingMember(t *testing.T) {
	u := newUpdateWorld(t)
	oldMongo := tgzOf(t, []member{{name: "mongodb-macos-aarch64--8.2.3/bin/mongod", body: "old", exec: true}})
	single := tgzOf(t, []member{{name: "mongodb-macos-aarch64-8.2.4/bin/mongod", body: "new", exec: true}})
	u.feed = map[string]any{"versions": []any{
		release("8.2.4", true, [2]string{u.serve("/osx/mongodb-macos-arm64-8.2.4.tgz", single), sum(single)}),
	}}
	l := &Lock{Schema: 1, Platform: "darwin-arm64", Natives: []Native{
		{Name: "mongod", Version: "8.2.3", Source: u.serve("/osx/mongodb-macos-arm64-8.2.3.tgz", oldMongo), SHA256: sum(oldMongo),
			Members: map[string]string{"mongodb-macos-aarch64--8.2.3/bin/mongod": "bin/mongod"}, PinSource: "test", Track: "mongodb:8.2"},
	}}
	opts := u.opts(t, writeLock(t, l))
	opts.DryRun = true
	changes, err := Update(context.Background(), opts)
	if err != nil || len(changes) != 1 || changes[0].Members["mongodb-macos-aarch64-8.2.4/bin/mongod"] != "bin/mongod" {
		t.Fatalf("single dash: %v %+v", err, changes)
	}

	empty := tgzOf(t, []member{{name: "mongodb-macos-aarch64-8.2.5/README", body: "no binaries"}})
	u.feed = map[string]any{"versions": []any{
		release("8.2.5", true, [2]string{u.serve("/osx/mongodb-macos-arm64-8.2.5.tgz", empty), sum(empty)}),
	}}
	_, err = Update(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "no file like mongodb-macos-aarch64--8.2.3/bin/mongod in the new archive (its top-level entries: mongodb-macos-aarch64-8.2.5)") {
		t.Fatalf("missing member: %v", err)
	}
}

func sha(c string) string { return strings.Repeat(c, 64) }
