package natives

import (
	"os"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// TestCommittedLocks: every platform has a lock that validates, names its
// platform, pins mongod and redis (and OpenSSL on macOS) with a recorded
// pin source, and is in the canonical form Marshal writes.
func TestCommittedLocks(t *testing.T) {
	root := testsupport.RepoRoot(t)
	for _, p := range platform.All {
		t.Run(p.ID, func(t *testing.T) {
			path := LockPath(root, p.ID)
			l, err := ReadLock(path)
			if err != nil {
				t.Fatal(err)
			}
			if l.Platform != p.ID {
				t.Fatalf("platform %q", l.Platform)
			}
			names := map[string]bool{}
			for _, n := range l.Natives {
				names[n.Name] = true
				if !strings.HasPrefix(n.Source, "https://") && !strings.HasPrefix(n.Source, "oci://ghcr.io/") {
					t.Errorf("%s: source %s is neither https nor ghcr.io", n.Name, n.Source)
				}
			}
			// OpenSSL ships on every platform, so redis never uses the host's.
			want := []string{"mongod", "redis", "openssl"}
			if p.GOOS == "darwin" {
				if l.Floors.MacOS == "" {
					t.Error("no macOS floor")
				}
			} else if l.Floors.GLIBC == "" {
				t.Error("no glibc floor")
			}
			for _, w := range want {
				if !names[w] {
					t.Errorf("no %s pin", w)
				}
			}
			b, _ := os.ReadFile(path)
			canon, _ := l.Marshal()
			if string(b) != string(canon) {
				t.Errorf("%s is not in canonical form (rewrite it with Lock.Marshal)", path)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := func() *Lock {
		return &Lock{Schema: 1, Platform: "linux-x64", Natives: []Native{{
			Name: "mongod", Version: "8.0.11", Source: "https://example.com/m.tgz", SHA256: strings.Repeat("a", 64),
			Members: map[string]string{"m/bin/mongod": "bin/mongod"}, PinSource: "x",
		}}}
	}
	tests := []struct {
		name   string
		mutate func(*Lock)
		want   string
	}{
		{"ok", func(*Lock) {}, ""},
		{"schema", func(l *Lock) { l.Schema = 2 }, "schema"},
		{"latest", func(l *Lock) { l.Natives[0].Version = "latest" }, ".version"},
		{"bad digest", func(l *Lock) { l.Natives[0].SHA256 = "ABC" }, ".sha256"},
		{"plain http", func(l *Lock) { l.Natives[0].Source = "http://example.com/m.tgz" }, "only allowed for loopback"},
		{"oci digest mismatch", func(l *Lock) {
			l.Natives[0].Source = "oci://ghcr.io/homebrew/core/redis@sha256:" + strings.Repeat("b", 64)
		}, "does not match"},
		{"dest outside", func(l *Lock) { l.Natives[0].Members = map[string]string{"m": "../x"} }, "under bin/ or lib/"},
		{"dest elsewhere", func(l *Lock) { l.Natives[0].Members = map[string]string{"m": "share/x"} }, "under bin/ or lib/"},
		{"no pin source", func(l *Lock) { l.Natives[0].PinSource = "" }, "pinSource"},
		{"duplicate dest", func(l *Lock) {
			n := l.Natives[0]
			n.Name = "redis"
			l.Natives = append(l.Natives, n)
		}, "also written by mongod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := good()
			tt.mutate(l)
			err := l.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
		})
	}
}
