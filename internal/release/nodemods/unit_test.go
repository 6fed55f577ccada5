package nodemods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/platform"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		list []string
		v    string
		want bool
	}{
		{nil, "darwin", true},
		{[]string{"darwin"}, "darwin", true},
		{[]string{"darwin"}, "linux", false},
		{[]string{"!win32"}, "linux", true},
		{[]string{"!win32"}, "win32", false},
		{[]string{"linux", "!darwin"}, "freebsd", false},
	} {
		if got := allowed(tc.list, tc.v); got != tc.want {
			t.Errorf("allowed(%v, %s) = %v, want %v", tc.list, tc.v, got, tc.want)
		}
	}
}

func TestSupportsLibc(t *testing.T) {
	musl := Package{Name: "x-linuxmusl-x64", OS: []string{"linux"}, CPU: []string{"x64"}, Libc: []string{"musl"}}
	if musl.Supports(mustPlatform(t, "linux-x64")) {
		t.Errorf("a musl package must not count as linux-x64 (glibc)")
	}
	if (Package{OS: []string{"darwin"}, CPU: []string{"arm64"}, Libc: []string{"glibc"}}).Supports(mustPlatform(t, "darwin-arm64")) != true {
		t.Errorf("libc does not apply to darwin")
	}
}

func TestVariantName(t *testing.T) {
	for _, tc := range []struct {
		pkg    Package
		target string
		want   string
	}{
		{Package{Name: "@img/sharp-linux-x64", OS: []string{"linux"}, CPU: []string{"x64"}}, "darwin-arm64", "@img/sharp-darwin-arm64"},
		{Package{Name: "@next/swc-linux-x64-gnu", OS: []string{"linux"}, CPU: []string{"x64"}}, "darwin-arm64", "@next/swc-darwin-arm64"},
		{Package{Name: "@next/swc-linux-x64-gnu", OS: []string{"linux"}, CPU: []string{"x64"}}, "linux-arm64", "@next/swc-linux-arm64-gnu"},
		{Package{Name: "esbuild-linux-64", OS: []string{"linux"}, CPU: []string{"x64"}}, "darwin-arm64", ""},
	} {
		got, err := variantName(tc.pkg, mustPlatform(t, tc.target), Glibc)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("variantName(%s, %s) = %q, %v; want %q", tc.pkg.Name, tc.target, got, err, tc.want)
		}
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// An ELF file for this test: the test binary itself (linux/amd64 here).
func elfBytes(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\x7fELF") {
		t.Skip("needs an ELF test binary (a Linux build host)")
	}
	return string(data)
}

func TestScanAndCheckWithoutNetwork(t *testing.T) {
	elf := elfBytes(t)
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/plain/package.json":              `{"name":"plain","version":"1.0.0"}`,
		"node_modules/addon/package.json":              `{"name":"addon","version":"2.0.0"}`,
		"node_modules/addon/build/Release/addon.node":  elf,
		"node_modules/@s/x-win32-x64/package.json":     `{"name":"@s/x-win32-x64","version":"1.0.0","os":"win32","cpu":["x64"]}`,
		"node_modules/a/node_modules/b/package.json":   `{"name":"b","version":"3.0.0","optionalDependencies":{"c":"1"}}`,
		"node_modules/a/package.json":                  `{"name":"a","version":"1.0.0"}`,
		"node_modules/a/node_modules/b/lib/java.class": "\xca\xfe\xba\xbe\x00\x00\x00\x34not a fat binary",
		"node_modules/a/node_modules/b/README.md":      "MZ is not a PE header",
	})
	pkgs, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range pkgs {
		ids = append(ids, p.ID())
	}
	if got := strings.Join(ids, " "); got != "@s/x-win32-x64@1.0.0 a@1.0.0 b@3.0.0 addon@2.0.0 plain@1.0.0" {
		t.Errorf("Scan found %s", got)
	}
	for _, p := range pkgs {
		switch p.Name {
		case "addon":
			if !p.Native() || p.PlatformSpecific() || len(p.NativeFiles) != 1 {
				t.Errorf("addon: %+v", p)
			}
		case "@s/x-win32-x64":
			if !p.PlatformSpecific() || p.OS[0] != "win32" {
				t.Errorf("win32 package: %+v", p)
			}
		}
	}
	bad, err := Check(root, mustPlatform(t, "linux-x64"))
	if err != nil || len(bad) != 1 || !strings.Contains(bad[0], "@s/x-win32-x64") {
		t.Errorf("Check(linux-x64) = %v, %v; want only the win32 package", bad, err)
	}
	bad, _ = Check(root, mustPlatform(t, "darwin-arm64"))
	if len(bad) != 2 || !strings.Contains(strings.Join(bad, "\n"), "addon.node: elf linux/amd64") {
		t.Errorf("Check(darwin-arm64) = %v; want the win32 package and the ELF addon", bad)
	}
}

func TestRetargetRefusesHostCompiledAddon(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/addon/package.json":             `{"name":"addon","version":"2.0.0"}`,
		"node_modules/addon/build/Release/addon.node": elfBytes(t),
	})
	_, err := Retarget(context.Background(), Options{Dir: root, Target: mustPlatform(t, "darwin-arm64"), CacheDir: t.TempDir(), NPM: "/nonexistent/npm"})
	if err == nil || !strings.Contains(err.Error(), "addon@2.0.0 ships build/Release/addon.node") {
		t.Fatalf("err = %v, want a refusal naming addon@2.0.0", err)
	}
	if _, err := Retarget(context.Background(), Options{Dir: root, Target: mustPlatform(t, "linux-x64"), CacheDir: t.TempDir(), NPM: "/nonexistent/npm"}); err != nil {
		t.Errorf("the host's own addon is fine for the host: %v", err)
	}
}

func TestRetargetPrunesPrebuilds(t *testing.T) {
	files := map[string]string{
		"node_modules/pre/package.json":                        `{"name":"pre","version":"1.0.0"}`,
		"node_modules/pre/prebuilds/linux-x64/pre.node":        "x",
		"node_modules/pre/prebuilds/darwin-x64+arm64/pre.node": "x",
		"node_modules/pre/prebuilds/win32-x64/pre.node":        "x",
	}
	for _, tc := range []struct {
		target  string
		kept    string
		wantErr string
	}{
		{"darwin-arm64", "darwin-x64+arm64", ""},
		{"linux-x64", "linux-x64", ""},
		{"linux-arm64", "", "prebuilt addons only for"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, files)
			rep, err := Retarget(context.Background(), Options{Dir: root, Target: mustPlatform(t, tc.target), CacheDir: t.TempDir(), NPM: "/nonexistent/npm"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			left, _ := os.ReadDir(filepath.Join(root, "node_modules", "pre", "prebuilds"))
			if len(left) != 1 || left[0].Name() != tc.kept || len(rep.Pruned) != 2 {
				t.Errorf("left %v, pruned %v; want only %s", left, rep.Pruned, tc.kept)
			}
		})
	}
}

func TestRetargetUnresolvableVariantFails(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/odd-linux-only/package.json": `{"name":"odd-linux-only","version":"1.0.0","os":["linux"],"cpu":["x64"]}`,
	})
	_, err := Retarget(context.Background(), Options{Dir: root, Target: mustPlatform(t, "darwin-arm64"), CacheDir: t.TempDir(), NPM: "/nonexistent/npm"})
	if err == nil || !strings.Contains(err.Error(), "cannot be derived") {
		t.Fatalf("err = %v, want an error saying the variant cannot be derived", err)
	}
}

func TestWorkspaceRoot(t *testing.T) {
	base := t.TempDir()
	writeFiles(t, base, map[string]string{
		"mono/package.json":                  `{"private":true,"workspaces":["apps/*"]}`,
		"mono/apps/web/package.json":         `{"name":"web"}`,
		"mono/apps/locked/package.json":      `{"name":"locked"}`,
		"mono/apps/locked/package-lock.json": `{}`,
		"plain/app/package.json":             `{"name":"app"}`,
		"plain/package.json":                 `{"name":"not-a-workspace"}`,
	})
	for _, tc := range []struct{ app, root, rel string }{
		{"mono/apps/web", "mono", "apps/web"},
		{"mono/apps/locked", "mono/apps/locked", "."},
		{"plain/app", "plain/app", "."},
	} {
		root, rel, err := WorkspaceRoot(filepath.Join(base, tc.app))
		if err != nil || root != filepath.Join(base, tc.root) || rel != filepath.FromSlash(tc.rel) {
			t.Errorf("WorkspaceRoot(%s) = %s, %s, %v; want %s, %s", tc.app, root, rel, err, tc.root, tc.rel)
		}
	}
}

// glibcELF is a small shared library from the host linked against glibc
// (libc.so.6), standing in for an addon compiled on a Debian build host.
func glibcELF(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/lib/x86_64-linux-gnu/libdl.so.2", "/lib/aarch64-linux-gnu/libdl.so.2", "/lib64/libdl.so.2", "/usr/lib64/libdl.so.2"} {
		if data, err := os.ReadFile(p); err == nil {
			return string(data)
		}
	}
	t.Skip("needs a glibc host (libdl.so.2 under /lib/<arch>-linux-gnu or /lib64) as a glibc-linked ELF")
	return ""
}

func TestELFLibc(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"glibc.node": glibcELF(t)})
	b, ok, err := binarycheck.Identify(filepath.Join(root, "glibc.node"))
	if err != nil || !ok || b.Libc != Glibc {
		t.Fatalf("glibc.node: %+v ok=%v err=%v, want libc glibc", b, ok, err)
	}
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skipf("needs a Linux host: %v", err)
	}
	if b.RunsWith(host, Musl) || !b.RunsWith(host, Glibc) {
		t.Errorf("a glibc library must load with glibc only: %+v", b)
	}
}

func TestMuslTargetRefusesGlibcAddon(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"node_modules/gnu-addon/package.json":                 `{"name":"gnu-addon","version":"1.2.3"}`,
		"node_modules/gnu-addon/build/Release/gnu-addon.node": glibcELF(t),
	})
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skipf("needs a Linux host: %v", err)
	}
	_, err = Retarget(context.Background(), Options{Dir: root, Target: host, Libc: Musl, CacheDir: t.TempDir(), NPM: "/nonexistent/npm"})
	if err == nil || !strings.Contains(err.Error(), "gnu-addon@1.2.3 ships build/Release/gnu-addon.node") || !strings.Contains(err.Error(), "(glibc)") {
		t.Fatalf("err = %v, want a refusal naming gnu-addon@1.2.3 and its glibc binary", err)
	}
	bad, err := CheckLibc(root, host, Musl)
	if err != nil || len(bad) != 1 || !strings.Contains(bad[0], "(package gnu-addon@1.2.3)") || !strings.Contains(bad[0], "with musl") {
		t.Errorf("CheckLibc(musl) = %v, %v; want the addon named with its package", bad, err)
	}
	if bad, err := Check(root, host); err != nil || len(bad) != 0 {
		t.Errorf("Check(glibc) = %v, %v; want clean", bad, err)
	}
}

func TestVariantNameLibc(t *testing.T) {
	swc := Package{Name: "@next/swc-linux-x64-gnu", OS: []string{"linux"}, CPU: []string{"x64"}}
	if got, err := variantName(swc, mustPlatform(t, "linux-arm64"), Musl); err != nil || got != "@next/swc-linux-arm64-musl" {
		t.Errorf("variantName(musl) = %q, %v; want @next/swc-linux-arm64-musl", got, err)
	}
}
