package binarycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/second-inc/second-release/internal/release/platform"
)

// goBinaries cross-compiles one tiny program per platform once per test
// binary run; the cross builds are the expensive part of these tests.
var goBinaries = struct {
	once  sync.Once
	dir   string
	paths map[string]string // platform id -> binary
	err   error
}{}

func crossBuilt(t *testing.T) map[string]string {
	t.Helper()
	goBinaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "binarycheck-go-")
		if err != nil {
			goBinaries.err = err
			return
		}
		goBinaries.dir = dir
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			goBinaries.err = err
			return
		}
		files := map[string]string{
			"go.mod":  "module hello\n\ngo 1.22\n",
			"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
				goBinaries.err = err
				return
			}
		}
		goBinaries.paths = map[string]string{}
		for _, p := range platform.All {
			out := filepath.Join(dir, p.ID, "hello")
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "GOOS="+p.GOOS, "GOARCH="+p.GOARCH, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
			if b, err := cmd.CombinedOutput(); err != nil {
				goBinaries.err = err
				goBinaries.err = &buildErr{p.ID, string(b), err}
				return
			}
			goBinaries.paths[p.ID] = out
		}
	})
	if goBinaries.err != nil {
		t.Fatalf("cross-compile test binaries: %v", goBinaries.err)
	}
	return goBinaries.paths
}

type buildErr struct {
	id, out string
	err     error
}

func (e *buildErr) Error() string {
	return "go build for " + e.id + ": " + e.err.Error() + "\n" + e.out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if goBinaries.dir != "" {
		os.RemoveAll(goBinaries.dir)
	}
	os.Exit(code)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPlatformGoBinaries(t *testing.T) {
	bins := crossBuilt(t)
	for _, target := range platform.All {
		for _, built := range platform.All {
			t.Run(target.ID+"/"+built.ID, func(t *testing.T) {
				root := t.TempDir()
				copyFile(t, bins[built.ID], filepath.Join(root, "bin", "second"))
				// Non-binaries are ignored, including a Java class file whose
				// magic equals a universal Mach-O's.
				os.WriteFile(filepath.Join(root, "README"), []byte("text"), 0o644)
				os.WriteFile(filepath.Join(root, "A.class"), []byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 61}, 0o644)
				vs, err := CheckPlatform(root, target)
				if err != nil {
					t.Fatal(err)
				}
				if built.ID == target.ID {
					if len(vs) != 0 {
						t.Fatalf("want no violations, got %v", vs)
					}
					return
				}
				if len(vs) == 0 {
					t.Fatalf("%s binary accepted in %s payload", built.ID, target.ID)
				}
				for _, v := range vs {
					if v.Path != "bin/second" {
						t.Errorf("violation for unexpected path %q", v.Path)
					}
				}
				if built.GOOS != target.GOOS && !strings.Contains(vs[0].Problem, "payload") {
					t.Errorf("OS mismatch not named: %v", vs)
				}
			})
		}
	}
}

func TestCheckPlatformSystemELF(t *testing.T) {
	host, err := platform.Host()
	if err != nil || runtime.GOOS != "linux" {
		t.Skip("needs a Linux host with a supported CPU to read its /bin/ls")
	}
	root := t.TempDir()
	copyFile(t, "/bin/ls", filepath.Join(root, "ls"))
	vs, err := CheckPlatform(root, host)
	if err != nil || len(vs) != 0 {
		t.Fatalf("host /bin/ls on %s: %v %v", host.ID, vs, err)
	}
	other := platform.All[2]
	if host.ID == other.ID {
		other = platform.All[3]
	}
	vs, _ = CheckPlatform(root, other)
	if len(vs) == 0 {
		t.Fatalf("host /bin/ls accepted for %s", other.ID)
	}
}
