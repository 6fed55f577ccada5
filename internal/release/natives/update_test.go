package natives

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport"
)

func TestUpdate(t *testing.T) {
	sha := func(c string) string { return strings.Repeat(c, 64) }
	feed := map[string]any{"versions": []map[string]any{
		{"version": "8.2.9", "production_release": true, "downloads": []map[string]any{ // other series: ignored
			{"archive": map[string]string{"url": "https://fastdl.mongodb.org/osx/mongodb-macos-arm64-8.2.9.tgz", "sha256": sha("1")}}}},
		{"version": "8.0.14-rc0", "production_release": false, "downloads": []map[string]any{
			{"archive": map[string]string{"url": "https://fastdl.mongodb.org/osx/mongodb-macos-arm64-8.0.14-rc0.tgz", "sha256": sha("2")}}}},
		{"version": "8.0.13", "production_release": true, "downloads": []map[string]any{
			{"archive": map[string]string{"url": "https://fastdl.mongodb.org/osx/mongodb-macos-x86_64-8.0.13.tgz", "sha256": sha("3")}},
			{"archive": map[string]string{"url": "https://fastdl.mongodb.org/osx/mongodb-macos-arm64-8.0.13.tgz", "sha256": sha("4")}}}},
		{"version": "8.0.12", "production_release": true, "downloads": []map[string]any{
			{"archive": map[string]string{"url": "https://fastdl.mongodb.org/osx/mongodb-macos-arm64-8.0.12.tgz", "sha256": sha("5")}}}},
	}}
	formulas := map[string]any{
		"redis": map[string]any{"versions": map[string]string{"stable": "8.6.3"}, "revision": 0,
			"bottle": map[string]any{"stable": map[string]any{"files": map[string]any{
				"arm64_sonoma": map[string]string{"url": "https://ghcr.io/v2/homebrew/core/redis/blobs/sha256:" + sha("6"), "sha256": sha("6")}}}}},
		"openssl@3": map[string]any{"versions": map[string]string{"stable": "3.6.1"}, "revision": 1,
			"bottle": map[string]any{"stable": map[string]any{"files": map[string]any{
				"arm64_sonoma": map[string]string{"sha256": sha("7")}}}}},
	}
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.URL.Path)
		switch {
		case r.URL.Path == "/full.json":
			json.NewEncoder(w).Encode(feed)
		case strings.HasPrefix(r.URL.Path, "/api/formula/"):
			f, ok := formulas[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/formula/"), ".json")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(f)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	src, err := os.ReadFile(LockPath(testsupport.RepoRoot(t), "darwin-arm64"))
	if err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(t.TempDir(), LockFileName)
	os.WriteFile(lockPath, src, 0o644)
	opts := UpdateOptions{LockPath: lockPath, MongoFeed: srv.URL + "/full.json", BrewAPI: srv.URL + "/api/formula",
		Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }}

	opts.DryRun = true
	changes, err := Update(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 {
		t.Fatalf("changes: %+v", changes)
	}
	if b, _ := os.ReadFile(lockPath); string(b) != string(src) {
		t.Fatal("dry run wrote the lock")
	}

	opts.DryRun = false
	if _, err := Update(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Native{}
	for _, n := range l.Natives {
		byName[n.Name] = n
	}
	m := byName["mongod"]
	if m.Version != "8.0.13" || m.SHA256 != sha("4") || m.Source != "https://fastdl.mongodb.org/osx/mongodb-macos-arm64-8.0.13.tgz" ||
		m.Members["mongodb-macos-aarch64-8.0.13/bin/mongod"] != "bin/mongod" || !strings.Contains(m.PinSource, "full.json") {
		t.Errorf("mongod: %+v", m)
	}
	r := byName["redis"]
	if r.Version != "8.6.3" || r.Source != "oci://ghcr.io/homebrew/core/redis@sha256:"+sha("6") || r.Members["redis/8.6.3/bin/redis-server"] != "bin/redis-server" {
		t.Errorf("redis: %+v", r)
	}
	o := byName["openssl"]
	if o.Version != "3.6.1_1" || o.Members["openssl@3/3.6.1_1/lib/libssl.3.dylib"] != "lib/libssl.3.dylib" || !strings.Contains(o.PinSource, "2026-11-27") {
		t.Errorf("openssl: %+v", o)
	}

	// Up to date: nothing changes, nothing is written.
	before, _ := os.ReadFile(lockPath)
	changes, err = Update(context.Background(), opts)
	if err != nil || len(changes) != 0 {
		t.Fatalf("second update: %v %+v", err, changes)
	}
	if after, _ := os.ReadFile(lockPath); string(after) != string(before) {
		t.Fatal("no-op update rewrote the lock")
	}
}
