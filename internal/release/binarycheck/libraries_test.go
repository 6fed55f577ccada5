package binarycheck

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/elfpatch"
	"github.com/second-inc/second-release/internal/release/natives/bottle"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/craft"
)

func mustPlatform(t *testing.T, id string) platform.Platform {
	t.Helper()
	p, err := platform.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	machoLoad    = craft.Load
	dylib        = craft.Dylib
	rpath        = craft.Rpath
	buildVersion = craft.BuildVersion
	craftMacho   = craft.Executable
	craftFat     = craft.Fat
)

const (
	cpuARM64 = craft.CPUARM64
	cpuAMD64 = craft.CPUAMD64
	macos11  = 11 << 16
	macos15  = 15<<16 | 2<<8
)

func write(t *testing.T, root, rel string, b []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func flipByte(b []byte, i int) []byte {
	b = append([]byte(nil), b...)
	b[i] ^= 1
	return b
}

func problems(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString(v.String() + "\n")
	}
	return b.String()
}

func TestCheckMachOCrafted(t *testing.T) {
	darwinArm := mustPlatform(t, "darwin-arm64")
	floors := Floors{MacOS: "14.0"}
	sys := dylib("/usr/lib/libSystem.B.dylib")
	brewSSL := dylib("@@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libssl.3.dylib")
	optSSL := dylib("/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib")
	libssl := craftMacho(cpuARM64, machoLoad(0xd, []uint32{2, 0, 0}, "/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib"), optSSL, sys, buildVersion(macos11))
	libcrypto := craftMacho(cpuARM64, sys, buildVersion(macos11))

	tests := []struct {
		name  string
		files map[string][]byte
		want  []string // substrings, one per expected violation, in order
	}{
		{"covered redis with shipped openssl", map[string][]byte{
			"dist/runtime/bin/redis-server":        craftMacho(cpuARM64, brewSSL, optSSL, sys, buildVersion(macos11)),
			"dist/runtime/lib/libssl.3.dylib":      libssl,
			"dist/runtime/lib/libcrypto.3.dylib":   libcrypto,
			"dist/runtime/bin/mongod":              craftMacho(cpuARM64, sys, dylib("/System/Library/Frameworks/Security.framework/Versions/A/Security"), buildVersion(macos11)),
			"dist/web/node_modules/x/x.node":       craftMacho(cpuARM64, dylib("@loader_path/libx.dylib"), sys),
			"dist/web/node_modules/x/libx.dylib":   craftMacho(cpuARM64, sys),
			"dist/web/node_modules/y/y.node":       craftMacho(cpuARM64, dylib("@rpath/liby.dylib"), rpath("@loader_path/../lib"), sys),
			"dist/web/node_modules/y/lib/liby.so":  nil,
			"dist/web/node_modules/lib/liby.dylib": craftMacho(cpuARM64, sys),
		}, nil},
		{"foreign path, lib not shipped", map[string][]byte{
			"dist/runtime/bin/redis-server": craftMacho(cpuARM64, brewSSL, sys),
		}, []string{"dist/runtime/bin/redis-server: loads @@HOMEBREW_PREFIX@@/opt/openssl@3/lib/libssl.3.dylib from the build host"}},
		{"foreign path in a file the rule does not cover", map[string][]byte{
			"bin/second":                         craftMacho(cpuARM64, optSSL, sys),
			"dist/runtime/lib/libcrypto.3.dylib": libcrypto,
		}, []string{"bin/second: loads /opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib, shipped in dist/runtime/lib, but this file is not started with DYLD_LIBRARY_PATH"}},
		{"non-system absolute library", map[string][]byte{
			"dist/runtime/bin/mongod": craftMacho(cpuARM64, dylib("/usr/local/lib/libfoo.dylib"), sys),
		}, []string{"loads /usr/local/lib/libfoo.dylib, which is neither a system library nor shipped"}},
		{"build-host rpath", map[string][]byte{
			"bin/tool": craftMacho(cpuARM64, rpath("/opt/homebrew/lib"), sys),
		}, []string{"LC_RPATH /opt/homebrew/lib points into the build host"}},
		{"minimum macOS above floor", map[string][]byte{
			"dist/runtime/bin/mongod": craftMacho(cpuARM64, sys, buildVersion(macos15)),
		}, []string{"needs macOS 15.2, newer than the floor 14.0"}},
		{"old-style version load command", map[string][]byte{
			"dist/runtime/bin/mongod": craftMacho(cpuARM64, sys, machoLoad(lcVersionMinMacOSX, []uint32{15 << 16, 15 << 16}, "")),
		}, []string{"needs macOS 15.0"}},
		{"universal binary: every slice checked", map[string][]byte{
			"dist/runtime/bin/redis-server": craftFat(map[uint32][]byte{
				cpuARM64: craftMacho(cpuARM64, sys),
				cpuAMD64: craftMacho(cpuAMD64, dylib("/usr/local/Cellar/openssl@3/3.6.0/lib/libssl.3.dylib"), sys),
			}),
		}, []string{"CpuAmd64 slice: loads /usr/local/Cellar/openssl@3/3.6.0/lib/libssl.3.dylib from the build host"}},
		{"universal binary without the platform's slice", map[string][]byte{
			"dist/runtime/bin/redis-server": craftFat(map[uint32][]byte{cpuAMD64: craftMacho(cpuAMD64, sys)}),
		}, []string{"universal Mach-O without a CpuArm64 slice"}},
		{"unsigned arm64 code", map[string][]byte{
			"dist/runtime/bin/mongod":  craft.UnsignedExecutable(cpuARM64, sys),
			"dist/runtime/bin/x86tool": craft.UnsignedExecutable(cpuAMD64, sys), // wrong arch, but unsigned x86_64 may run
		}, []string{"dist/runtime/bin/mongod: no code signature (LC_CODE_SIGNATURE)", "dist/runtime/bin/x86tool: Mach-O for CpuAmd64, want CpuArm64"}},
		{"changed after signing", map[string][]byte{
			"dist/runtime/bin/mongod": flipByte(craftMacho(cpuARM64, sys, buildVersion(macos11)), 28), // mach_header_64.reserved
		}, []string{"dist/runtime/bin/mongod: code signature does not match the file: sha256 code page hash mismatch in 1 of 1 page(s): 0"}},
		{"universal binary with one slice changed after signing", map[string][]byte{
			"dist/runtime/bin/redis-server": craftFat(map[uint32][]byte{
				cpuARM64: craftMacho(cpuARM64, sys),
				cpuAMD64: flipByte(craftMacho(cpuAMD64, sys), 28), // mach_header_64.reserved
			}),
		}, []string{"CpuAmd64 slice: code signature does not match the file"}},
		{"wrong arch thin", map[string][]byte{
			"dist/runtime/bin/mongod": craftMacho(cpuAMD64, sys),
		}, []string{"Mach-O for CpuAmd64, want CpuArm64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, b := range tt.files {
				if b == nil {
					b = []byte("not a binary")
				}
				write(t, root, rel, b)
			}
			vs, err := Check(root, PayloadOptions(darwinArm, floors, nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(vs), len(tt.want), problems(vs))
			}
			for i, w := range tt.want {
				if !strings.Contains(vs[i].String(), w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, vs[i], w)
				}
			}
		})
	}
}

// TestCheckGoDarwinBinary uses a real cross-compiled Go binary: it loads
// libSystem and frameworks only and records its minimum macOS.
func TestCheckGoDarwinBinary(t *testing.T) {
	bins := crossBuilt(t)
	for _, id := range []string{"darwin-arm64", "darwin-x64"} {
		p := mustPlatform(t, id)
		root := t.TempDir()
		copyFile(t, bins[id], filepath.Join(root, "bin", "second"))
		// Go 1.26 targets macOS 12 (Monterey).
		vs, err := Check(root, PayloadOptions(p, Floors{MacOS: "12.0"}, nil))
		if err != nil || len(vs) != 0 {
			t.Fatalf("%s: %v %s", id, err, problems(vs))
		}
		vs, _ = Check(root, PayloadOptions(p, Floors{MacOS: "11.0"}, nil))
		if len(vs) != 1 || !strings.Contains(vs[0].Problem, "needs macOS 12.0, newer than the floor 11.0") {
			t.Fatalf("%s with floor 11.0: %s", id, problems(vs))
		}

		// Patch the libSystem load into a Homebrew path of equal room.
		b, _ := os.ReadFile(bins[id])
		old := []byte("/usr/lib/libSystem.B.dylib\x00")
		i := bytes.Index(b, old)
		if i < 0 || i > 64<<10 {
			t.Fatalf("%s: libSystem load not found in the header", id)
		}
		patched := append([]byte(nil), b...)
		copy(patched[i:], "/opt/homebrew/lib/libz.1.dylib\x00")
		write(t, root, "bin/second", patched)
		vs, _ = Check(root, PayloadOptions(p, Floors{MacOS: "12.0"}, nil))
		got := problems(vs)
		if !strings.Contains(got, "loads /opt/homebrew/lib/libz.1.dylib from the build host") {
			t.Fatalf("%s patched: %s", id, got)
		}
		// Go signs darwin/arm64 binaries ad hoc: the patch, not re-signed,
		// breaks the hash of the first page. Its amd64 builds are unsigned.
		if want := "code signature does not match the file: sha256 code page hash mismatch in 1 of"; (id == "darwin-arm64") != strings.Contains(got, want) || len(vs) != map[bool]int{true: 2, false: 1}[id == "darwin-arm64"] {
			t.Fatalf("%s patched, signature: %s", id, got)
		}
	}
}

func TestCheckGoLinuxBinaryStatic(t *testing.T) {
	bins := crossBuilt(t)
	for _, id := range []string{"linux-x64", "linux-arm64"} {
		root := t.TempDir()
		copyFile(t, bins[id], filepath.Join(root, "bin", "second"))
		vs, err := Check(root, PayloadOptions(mustPlatform(t, id), Floors{GLIBC: "2.17"}, nil))
		if err != nil || len(vs) != 0 {
			t.Fatalf("%s: %v %s", id, err, problems(vs))
		}
	}
}

// hostELF returns a copy of /bin/ls and the host platform, or skips.
func hostELF(t *testing.T) ([]byte, platform.Platform) {
	t.Helper()
	host, err := platform.Host()
	if err != nil || runtime.GOOS != "linux" {
		t.Skip("needs a glibc Linux host (amd64 or arm64) with /bin/ls")
	}
	b, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skip("needs /bin/ls: " + err.Error())
	}
	return b, host
}

func TestCheckSystemELF(t *testing.T) {
	ls, host := hostELF(t)
	f, err := elf.Open("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	needed, _ := f.ImportedLibraries()
	f.Close()
	var extra []string // what the host's ls needs beyond the default system set
	def := strings.Join(DefaultLinuxSystem(), " ")
	for _, n := range needed {
		if !strings.Contains(def, n) {
			extra = append(extra, n)
		}
	}

	root := t.TempDir()
	write(t, root, "dist/runtime/bin/redis-server", ls)
	vs, err := Check(root, PayloadOptions(host, Floors{GLIBC: "99.0"}, extra))
	if err != nil || len(vs) != 0 {
		t.Fatalf("host ls with its own libraries allowed: %v %s", err, problems(vs))
	}
	// glibc floor: the host's glibc is newer than 2.2.5, so a floor there
	// must report the newest GLIBC_ version it needs.
	vs, _ = Check(root, PayloadOptions(host, Floors{GLIBC: "2.2.5"}, extra))
	if len(vs) != 1 || !strings.Contains(vs[0].Problem, "newer than the floor GLIBC_2.2.5") || !strings.Contains(vs[0].Problem, "libc.so.6 GLIBC_2.") {
		t.Fatalf("glibc floor: %s", problems(vs))
	}
	if len(extra) > 0 {
		// Shipping the extra libraries in dist/runtime/lib satisfies the rule
		// for covered files only.
		vs, _ = Check(root, PayloadOptions(host, Floors{}, nil))
		if len(vs) != len(extra) || !strings.Contains(vs[0].Problem, "neither a system library nor shipped") {
			t.Fatalf("unshipped %v: %s", extra, problems(vs))
		}
		for _, n := range extra {
			write(t, root, "dist/runtime/lib/"+n, []byte("stand-in"))
		}
		write(t, root, "dist/tools/ls", ls)
		vs, _ = Check(root, PayloadOptions(host, Floors{}, nil))
		if len(vs) != len(extra) || vs[0].Path != "dist/tools/ls" || !strings.Contains(vs[0].Problem, "not started with LD_LIBRARY_PATH") {
			t.Fatalf("shipped %v: %s", extra, problems(vs))
		}
	}
}

func TestCheckELFForeignInterpreter(t *testing.T) {
	ls, host := hostELF(t)
	want := StandardInterpreter(host.GOARCH)
	i := bytes.Index(ls, []byte(want+"\x00"))
	if i < 0 {
		t.Skipf("host /bin/ls does not use %s", want)
	}
	patched := append([]byte(nil), ls...)
	foreign := "/home/linuxbrew/lib/ld.so"
	copy(patched[i:], foreign+strings.Repeat("\x00", len(want)+1-len(foreign)))
	root := t.TempDir()
	write(t, root, "dist/runtime/bin/mongod", patched)
	vs, err := Check(root, Options{Platform: host, SystemLibraries: []string{"libselinux.so.1"}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vs {
		found = found || strings.Contains(v.Problem, "ELF interpreter "+foreign+" is not the system loader")
	}
	if !found {
		t.Fatalf("foreign interpreter not reported: %s", problems(vs))
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"2.31", "2.31", 0}, {"2.34", "2.31", 1}, {"2.3.4", "2.31", -1}, {"2.2.5", "2.3", -1}, {"14", "14.0", 0}, {"15.2", "14.0", 1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compare(%s,%s)=%d want %d", c.a, c.b, got, c.want)
		}
	}
	if decodeMachoVersion(macos15) != "15.2" || decodeMachoVersion(0x000a0f01) != "10.15.1" {
		t.Error("decodeMachoVersion")
	}
}

// A Homebrew Linux bottle as poured from the archive fails the check (its
// interpreter is a placeholder); after the build's in-place rewrite to the
// system loader and an $ORIGIN RUNPATH it passes, even for a file the
// runtime does not start with LD_LIBRARY_PATH.
func TestCheckHomebrewBottleBeforeAndAfterRewrite(t *testing.T) {
	_, host := hostELF(t)
	f, err := elf.Open("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	needed, _ := f.ImportedLibraries()
	f.Close()
	root := t.TempDir()
	for _, n := range needed {
		if !slices.Contains(DefaultLinuxSystem(), n) {
			write(t, root, "dist/runtime/lib/"+n, []byte("stand-in"))
		}
	}
	server := filepath.Join(root, "dist/runtime/bin/redis-server")
	tool := filepath.Join(root, "dist/tools/ls")
	testsupport.BottleELF(t, "/bin/ls", server, bottle.RedisRunpath)
	testsupport.BottleELF(t, "/bin/ls", tool, bottle.RedisRunpath)

	vs, err := Check(root, PayloadOptions(host, Floors{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := problems(vs)
	for _, want := range []string{
		"dist/runtime/bin/redis-server: ELF interpreter " + bottle.Interpreter + " is not the system loader " + StandardInterpreter(host.GOARCH),
		"dist/tools/ls: ELF interpreter " + bottle.Interpreter + " is not the system loader",
		"dist/tools/ls: library search path " + bottle.Prefix + "/lib points into the build host",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}

	for file, origin := range map[string]string{server: "$ORIGIN/../lib", tool: "$ORIGIN/../runtime/lib"} {
		if _, err := elfpatch.Rewrite(file, func(field, old string) (string, bool) {
			if field == elfpatch.FieldInterp {
				return StandardInterpreter(host.GOARCH), true
			}
			return origin, true
		}); err != nil {
			t.Fatal(err)
		}
	}
	if vs, err := Check(root, PayloadOptions(host, Floors{}, nil)); err != nil || len(vs) != 0 {
		t.Fatalf("rewritten files: %v\n%s", err, problems(vs))
	}
}
