package testsupport

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/natives/bottle"
)

// BottleELF copies the ELF file src to dst (mode 0755) and puts Homebrew's
// placeholders in (bottle.Placeholders), as in a Linux bottle before `brew`
// pours it: the interpreter becomes bottle.Interpreter when src has one,
// and the RUNPATH becomes runpath. It uses patchelf (installed by
// scripts/setup; skips locally, fails in CI when missing).
func BottleELF(t testing.TB, src, dst, runpath string) {
	t.Helper()
	patchelf := Tool(t, "patchelf")
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
	interp := ""
	if _, err := exec.Command(patchelf, "--print-interpreter", dst).Output(); err == nil {
		interp = bottle.Interpreter
	}
	if err := bottle.Placeholders(context.Background(), patchelf, t.TempDir(), dst, interp, runpath); err != nil {
		t.Fatal(err)
	}
}

// SystemLibrary returns the path ld.so resolves soname to for bin, read
// from ldd; it skips when bin does not load soname.
func SystemLibrary(t testing.TB, bin, soname string) string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Skipf("ldd %s: %v (needs a glibc host)", bin, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == soname && f[1] == "=>" && filepath.IsAbs(f[2]) {
			return f[2]
		}
	}
	t.Skipf("%s does not load %s (ldd:\n%s)", bin, soname, out)
	return ""
}
