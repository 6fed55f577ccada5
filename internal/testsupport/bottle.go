package testsupport

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Homebrew's relocation placeholders as its Linux bottles carry them.
const (
	HomebrewPrefix = "@@HOMEBREW_PREFIX@@"
	HomebrewInterp = HomebrewPrefix + "/lib/ld.so"
	// HomebrewRunpath is the shape of a bottled binary's RUNPATH: the
	// prefix's opt/ directories of its dependencies, then prefix/lib.
	HomebrewRunpath = HomebrewPrefix + "/opt/openssl@3/lib:" + HomebrewPrefix + "/lib"
)

// BottleELF copies the ELF file src to dst (mode 0755) and puts Homebrew's
// placeholders in, as in a Linux bottle before `brew` pours it: the
// interpreter becomes HomebrewInterp when src has one, and the RUNPATH
// becomes runpath. It uses patchelf (installed by scripts/setup; skips
// locally, fails in CI when missing). patchelf reads an argument starting
// with '@' as a file name, so the placeholder strings go through files.
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
	arg := func(s string) string {
		f := filepath.Join(t.TempDir(), "arg")
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return "@" + f
	}
	run := func(args ...string) string {
		out, err := exec.Command(patchelf, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("patchelf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if _, err := exec.Command(patchelf, "--print-interpreter", dst).Output(); err == nil {
		run("--set-interpreter", arg(HomebrewInterp), dst)
	}
	run("--set-rpath", arg(runpath), dst)
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
