package testsupport

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/pack"
)

// npmEpoch is the fixed mtime of test tarballs (npm's own), so equal inputs
// give equal bytes and equal integrity.
var npmEpoch = time.Unix(499162500, 0)

// WriteNpmTarball writes an npm package tarball at path with the project's
// own packer: files (paths relative to the package root, under package/ in
// the archive) are mode 0644, except those named in executables (0755).
func WriteNpmTarball(t testing.TB, path string, files map[string]string, executables ...string) {
	t.Helper()
	src := t.TempDir()
	for name, body := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if slices.Contains(executables, name) {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pack.Tarball(context.Background(), src, path, npmEpoch); err != nil {
		t.Fatal(err)
	}
}
