// Package testsupport starts the real services tests need (Verdaccio, an OCI
// registry, redis-server, …) on loopback and cleans up after them, and finds
// the pinned tools scripts/setup installs. Only _test.go files import it.
package testsupport

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// InCI reports whether the run is CI's, where a missing installed tool is a
// failure of scripts/setup rather than a reason to skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Tool finds a tool that scripts/setup installs: $PATH first, then
// .tools/bin and .tools/npm/node_modules/.bin. Missing: skip locally, fail in CI.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := FindTool(t, name); ok {
		return p
	}
	msg := name + " not found on PATH or in .tools: run scripts/setup"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FindTool is Tool without skipping.
func FindTool(t testing.TB, name string) (string, bool) {
	t.Helper()
	root := RepoRoot(t)
	for _, p := range []string{
		filepath.Join(root, ".tools", "bin", name),
		filepath.Join(root, ".tools", "npm", "node_modules", ".bin", name),
	} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return "", false
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
