package nodemods

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

func mustPlatform(t *testing.T, id string) platform.Platform {
	t.Helper()
	p, err := platform.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sharpFixture is a real `npm install sharp` for this host (the package a
// Next.js standalone trace carries), installed once per test binary.
var sharpOnce struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharpOnce.dir != "" {
		os.RemoveAll(sharpOnce.dir)
	}
	os.Exit(code)
}

func sharpTree(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		if testsupport.InCI() {
			t.Fatal("npm not on PATH")
		}
		t.Skip("needs npm (Node 20+) and the npm registry")
	}
	host, err := platform.Host()
	if err != nil || host.ID != "linux-x64" {
		t.Skipf("fixture expectations are for a linux-x64 build host, this is %s/%s", host.GOOS, host.GOARCH)
	}
	sharpOnce.once.Do(func() {
		sharpOnce.dir, sharpOnce.err = os.MkdirTemp("", "nodemods-sharp-")
		if sharpOnce.err != nil {
			return
		}
		os.WriteFile(filepath.Join(sharpOnce.dir, "package.json"), []byte(`{"private":true,"dependencies":{"sharp":"0.35.5"}}`), 0o644)
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts")
		cmd.Dir = sharpOnce.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			sharpOnce.err = err
			t.Logf("%s", out)
		}
	})
	if sharpOnce.err != nil {
		t.Fatalf("npm install sharp: %v", sharpOnce.err)
	}
	// Each test gets its own copy: Retarget changes the tree in place.
	dir := filepath.Join(t.TempDir(), "tree")
	if err := filetree.Copy(sharpOnce.dir, dir, filetree.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func has(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestRetargetSharpToDarwinArm64(t *testing.T) {
	dir := sharpTree(t)
	host, darwin := mustPlatform(t, "linux-x64"), mustPlatform(t, "darwin-arm64")

	if bad, err := Check(dir, host); err != nil || len(bad) != 0 {
		t.Fatalf("host tree should be clean for %s: %v %v", host.ID, bad, err)
	}
	bad, err := Check(dir, darwin)
	if err != nil {
		t.Fatal(err)
	}
	if !has(bad, "@img/sharp-linux-x64") || !has(bad, "elf linux/amd64") {
		t.Fatalf("Check(darwin-arm64) before retarget should list the linux packages and ELF files, got %v", bad)
	}

	cache := t.TempDir()
	rep, err := Retarget(context.Background(), Options{Dir: dir, Target: darwin, CacheDir: cache})
	if err != nil {
		t.Fatalf("Retarget: %v", err)
	}
	for _, want := range []string{"@img/sharp-darwin-arm64@0.35.5", "@img/sharp-libvips-darwin-arm64@"} {
		if !has(rep.Added, want) {
			t.Errorf("report.Added lacks %s: %+v", want, rep)
		}
	}
	for _, want := range []string{"@img/sharp-linux-x64@0.35.5", "@img/sharp-libvips-linux-x64@"} {
		if !has(rep.Removed, want) {
			t.Errorf("report.Removed lacks %s: %+v", want, rep)
		}
	}
	if len(rep.Replaced) != 1 || !strings.HasPrefix(rep.Replaced[0], "sharp@0.35.5: ") {
		t.Errorf("report.Replaced = %q, want one line for sharp@0.35.5", rep.Replaced)
	}
	for _, gone := range []string{"sharp-linux-x64", "sharp-libvips-linux-x64"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@img", gone)); !os.IsNotExist(err) {
			t.Errorf("%s still in the tree", gone)
		}
	}
	addon := filepath.Join(dir, "node_modules", "@img", "sharp-darwin-arm64", "lib", "sharp-darwin-arm64-0.35.5.node")
	b, ok, err := binarycheck.Identify(addon)
	if err != nil || !ok || b.Format != "macho" || !b.Runs(darwin) {
		t.Errorf("%s: %v ok=%v err=%v, want a darwin/arm64 Mach-O", addon, b, ok, err)
	}

	if bad, err := Check(dir, darwin); err != nil || len(bad) != 0 {
		t.Errorf("Check(darwin-arm64) after retarget = %v, %v; want clean", bad, err)
	}
	bad, err = Check(dir, host)
	if err != nil || !has(bad, "@img/sharp-darwin-arm64") || !has(bad, "macho darwin/arm64") {
		t.Errorf("Check(linux-x64) after retarget should list the darwin packages and Mach-O files, got %v (%v)", bad, err)
	}

	// The second run is served from the cache, without npm.
	dir2 := sharpTree(t)
	if _, err := Retarget(context.Background(), Options{Dir: dir2, Target: darwin, CacheDir: cache, NPM: "/nonexistent/npm"}); err != nil {
		t.Errorf("Retarget from cache: %v", err)
	}
}

func TestRetargetTable(t *testing.T) {
	for _, tc := range []struct {
		target           string
		added, untouched []string
	}{
		{"linux-x64", nil, []string{"sharp-linux-x64"}},
		{"linux-arm64", []string{"@img/sharp-linux-arm64@0.35.5", "@img/sharp-libvips-linux-arm64@"}, nil},
		{"darwin-x64", []string{"@img/sharp-darwin-x64@0.35.5", "@img/sharp-libvips-darwin-x64@"}, nil},
	} {
		t.Run(tc.target, func(t *testing.T) {
			dir := sharpTree(t)
			target := mustPlatform(t, tc.target)
			rep, err := Retarget(context.Background(), Options{Dir: dir, Target: target, CacheDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Added) != len(tc.added) {
				t.Errorf("added %v, want %v", rep.Added, tc.added)
			}
			for _, a := range tc.added {
				if !has(rep.Added, a) {
					t.Errorf("added %v lacks %s", rep.Added, a)
				}
			}
			for _, u := range tc.untouched {
				if _, err := os.Stat(filepath.Join(dir, "node_modules", "@img", u)); err != nil {
					t.Errorf("%s should stay: %v", u, err)
				}
			}
			if bad, err := Check(dir, target); err != nil || len(bad) != 0 {
				t.Errorf("Check(%s) = %v, %v", tc.target, bad, err)
			}
		})
	}
}

func TestRetargetSharpToMusl(t *testing.T) {
	dir := sharpTree(t)
	host := mustPlatform(t, "linux-x64")
	rep, err := Retarget(context.Background(), Options{Dir: dir, Target: host, Libc: Musl, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Retarget(musl): %v", err)
	}
	for _, want := range []string{"@img/sharp-linuxmusl-x64@0.35.5", "@img/sharp-libvips-linuxmusl-x64@"} {
		if !has(rep.Added, want) {
			t.Errorf("report.Added lacks %s: %+v", want, rep)
		}
	}
	for _, want := range []string{"@img/sharp-linux-x64@0.35.5", "@img/sharp-libvips-linux-x64@"} {
		if !has(rep.Removed, want) {
			t.Errorf("report.Removed lacks %s: %+v", want, rep)
		}
	}
	addon := filepath.Join(dir, "node_modules", "@img", "sharp-linuxmusl-x64", "lib", "sharp-linuxmusl-x64-0.35.5.node")
	if b, ok, err := binarycheck.Identify(addon); err != nil || !ok || b.Libc != Musl {
		t.Errorf("%s: %v ok=%v err=%v, want a musl ELF", addon, b, ok, err)
	}
	if bad, err := CheckLibc(dir, host, Musl); err != nil || len(bad) != 0 {
		t.Errorf("CheckLibc(musl) after retarget = %v, %v; want clean", bad, err)
	}
	bad, err := Check(dir, host)
	if err != nil || !has(bad, "@img/sharp-linuxmusl-x64") || !has(bad, "(musl) binary, not linux-x64 with glibc") {
		t.Errorf("Check(glibc) after the musl retarget should list the musl packages and binaries, got %v (%v)", bad, err)
	}
}
