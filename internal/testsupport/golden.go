package testsupport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden compares got with the file at path; with update it first writes
// got there (creating its directory). A mismatch shows both, quoted when
// they hold escape sequences or carriage returns so those are visible.
func Golden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got == string(want) {
		return
	}
	if strings.ContainsAny(got+string(want), "\x1b\r") {
		t.Errorf("output differs from %s:\ngot:\n%q\nwant:\n%q", path, got, want)
		return
	}
	t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
}
