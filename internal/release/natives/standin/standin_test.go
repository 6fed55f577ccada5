package standin_test

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/extract"
	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/natives/bottle"
	"github.com/second-inc/second-release/internal/testsupport/nativesmirror"
)

func interp(t *testing.T, f *elf.File) string {
	t.Helper()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// The mirror holds archives laid out like MongoDB's tgz and Homebrew's
// Linux bottles, with Homebrew's placeholders in the ELF files, under the
// digests the lock pins.
func TestSynthesizeShapesLikeUpstream(t *testing.T) {
	res := nativesmirror.Synthesize(t)
	lock, err := natives.ReadLock(res.LockPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(lock.Natives); got != 3 {
		t.Fatalf("lock has %d natives, want mongod, redis, openssl", got)
	}
	for _, n := range lock.Natives {
		archive := natives.CachePath(res.Mirror, n.SHA256)
		if _, err := os.Stat(archive); err != nil {
			t.Fatalf("%s: mirror lacks sha256/%s: %v", n.Name, n.SHA256, err)
		}
		if !strings.Contains(n.PinSource, "stand-in") || !strings.Contains(n.Source, "standin.invalid") {
			t.Errorf("%s: lock does not say it is a stand-in: source %q, pinSource %q", n.Name, n.Source, n.PinSource)
		}
		for member := range n.Members {
			var want string
			switch n.Name {
			case "mongod":
				arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
				if !strings.HasPrefix(member, "mongodb-linux-"+arch+"-ubuntu") || !strings.HasSuffix(member, "-"+n.Version+"/bin/mongod") {
					t.Errorf("mongod member %q, want mongodb-linux-%s-ubuntu<release>-%s/bin/mongod", member, arch, n.Version)
				}
			case "redis":
				if want = "redis/" + n.Version + "/bin/redis-server"; member != want {
					t.Errorf("redis member %q, want %q", member, want)
				}
			case "openssl":
				if !strings.HasPrefix(member, "openssl@3/"+n.Version+"/lib/lib") {
					t.Errorf("openssl member %q, want openssl@3/%s/lib/...", member, n.Version)
				}
			}
		}
		dest := t.TempDir()
		if _, err := extract.File(context.Background(), archive, extract.Options{Dest: dest, Members: n.Members}); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		for _, to := range n.Members {
			f, err := elf.Open(filepath.Join(dest, to))
			if err != nil {
				t.Fatalf("%s %s: %v", n.Name, to, err)
			}
			runpath, _ := f.DynString(elf.DT_RUNPATH)
			got := interp(t, f)
			f.Close()
			switch to {
			case "bin/redis-server":
				if got != bottle.Interpreter {
					t.Errorf("redis-server interpreter %q, want Homebrew's %q", got, bottle.Interpreter)
				}
				if strings.Join(runpath, ":") != bottle.RedisRunpath {
					t.Errorf("redis-server RUNPATH %q, want %q", runpath, bottle.RedisRunpath)
				}
			case "lib/libssl.so.3", "lib/libcrypto.so.3":
				if strings.Join(runpath, ":") != bottle.LibRunpath {
					t.Errorf("%s RUNPATH %q, want %q", to, runpath, bottle.LibRunpath)
				}
			}
		}
	}
	t.Run("same inputs, same digests", func(t *testing.T) {
		again := nativesmirror.Synthesize(t)
		for i, n := range again.Lock.Natives {
			if n.SHA256 != lock.Natives[i].SHA256 {
				t.Errorf("%s: %s then %s", n.Name, lock.Natives[i].SHA256, n.SHA256)
			}
		}
	})
}
