package machosig

import (
	"bytes"
	"debug/macho"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/second-inc/second-release/internal/testsupport/craft"
)

var (
	goBuildOnce sync.Once
	goBins      map[string]string
	goBuildErr  error
)

// goDarwin cross-builds a small Go program for darwin/arm64 (which Go's
// linker signs ad hoc) and darwin/amd64 (which it leaves unsigned).
func goDarwin(t testing.TB) map[string]string {
	t.Helper()
	goBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "machosig-go")
		if err != nil {
			goBuildErr = err
			return
		}
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644)
		goBins = map[string]string{}
		for _, arch := range []string{"arm64", "amd64"} {
			out := filepath.Join(dir, "hello-"+arch)
			cmd := exec.Command("go", "build", "-o", out, ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
			if b, err := cmd.CombinedOutput(); err != nil {
				goBuildErr = errors.New(string(b))
				return
			}
			goBins[arch] = out
		}
	})
	if goBuildErr != nil {
		t.Skipf("needs the go tool to cross-build darwin binaries: %v", goBuildErr)
	}
	return goBins
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func verifyBytes(b []byte) (Info, error) { return Verify(bytes.NewReader(b), int64(len(b))) }

func TestGoLinkerSignatureVerifies(t *testing.T) {
	bins := goDarwin(t)
	info, err := verifyBytes(read(t, bins["arm64"]))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Signed || !info.Adhoc || len(info.HashTypes) != 1 || info.HashTypes[0] != "sha256" || info.PageSize != 4096 ||
		info.CodeLimit != info.SignatureAt || info.CodeSlots != int((info.CodeLimit+4095)/4096) {
		t.Fatalf("arm64: %+v", info)
	}
	info, err = verifyBytes(read(t, bins["amd64"]))
	if err != nil || info.Signed {
		t.Fatalf("amd64 (Go leaves it unsigned): %+v %v", info, err)
	}
}

func TestChangedByteFails(t *testing.T) {
	b := read(t, goDarwin(t)["arm64"])
	at := 3*4096 + 123 // inside __TEXT, well before the signature
	b[at] ^= 0xff
	_, err := verifyBytes(b)
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "sha256 code page hash mismatch in 1 of") ||
		!strings.Contains(err.Error(), "page(s): 3 (bytes 12288-16384); the file changed after it was signed") {
		t.Fatalf("got %v", err)
	}
}

// The classic way to break a signature: rewrite an install name (what
// install_name_tool does) and not re-sign.
func TestRewrittenLoadCommandWithoutResigningFails(t *testing.T) {
	b := read(t, goDarwin(t)["arm64"])
	old := []byte("/usr/lib/libSystem.B.dylib\x00")
	i := bytes.Index(b, old)
	if i < 0 || i > 4096 {
		t.Fatal("libSystem load command not in the first page")
	}
	copy(b[i:], "/opt/homebrew/lib/libz.1.dylib\x00"[:len(old)])
	if _, err := macho.NewFile(bytes.NewReader(b)); err != nil {
		t.Fatalf("the patched file must still parse: %v", err)
	}
	_, err := verifyBytes(b)
	if err == nil || !strings.Contains(err.Error(), "page(s): 0 (bytes 0-4096)") {
		t.Fatalf("got %v", err)
	}
}

func TestTamperedSignature(t *testing.T) {
	b := read(t, goDarwin(t)["arm64"])
	info, err := verifyBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the CodeDirectory's codeLimit (big-endian at CD+32): the slot
	// count no longer matches it.
	cd := int(info.SignatureAt) + int(binary.BigEndian.Uint32(b[info.SignatureAt+16:]))
	binary.BigEndian.PutUint32(b[cd+32:], uint32(info.CodeLimit-4096))
	if _, err := verifyBytes(b); err == nil || !strings.Contains(err.Error(), "does not end where the signature starts") {
		t.Fatalf("codeLimit: %v", err)
	}
	// A SuperBlob with the wrong magic.
	b = read(t, goDarwin(t)["arm64"])
	b[info.SignatureAt] = 0
	if _, err := verifyBytes(b); err == nil || !strings.Contains(err.Error(), "does not start with an embedded-signature SuperBlob") {
		t.Fatalf("magic: %v", err)
	}
}

func TestUniversalFile(t *testing.T) {
	bins := goDarwin(t)
	arm, amd := read(t, bins["arm64"]), read(t, bins["amd64"])
	fat := craft.Fat(map[uint32][]byte{craft.CPUARM64: arm, craft.CPUAMD64: amd})
	p := filepath.Join(t.TempDir(), "fat")
	os.WriteFile(p, fat, 0o755)
	slices, err := VerifyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[macho.Cpu]Slice{}
	for _, s := range slices {
		got[s.Cpu] = s
	}
	if len(slices) != 2 || got[macho.CpuArm64].Err != nil || !got[macho.CpuArm64].Info.Signed || got[macho.CpuAmd64].Info.Signed {
		t.Fatalf("fat: %+v", slices)
	}
	// A byte changed inside the arm64 slice is found at its slice offset.
	ff, _ := macho.OpenFat(p)
	var off uint32
	for _, a := range ff.Arches {
		if a.Cpu == macho.CpuArm64 {
			off = a.Offset
		}
	}
	ff.Close()
	fat[off+5*4096+7] ^= 1
	os.WriteFile(p, fat, 0o755)
	slices, _ = VerifyFile(p)
	for _, s := range slices {
		if s.Cpu == macho.CpuArm64 && (s.Err == nil || !strings.Contains(s.Err.Error(), "page(s): 5 (bytes 20480-24576)")) {
			t.Fatalf("arm64 slice: %v", s.Err)
		}
	}
}

// craft.Sign is what the crafted test binaries elsewhere carry; it must
// verify here, and break like a real signature does.
func TestCraftedSignature(t *testing.T) {
	b := craft.Executable(craft.CPUARM64, craft.Dylib("/usr/lib/libSystem.B.dylib"))
	info, err := verifyBytes(b)
	if err != nil || !info.Signed || info.Identifier != "craft" {
		t.Fatalf("%+v %v", info, err)
	}
	info, err = verifyBytes(craft.UnsignedExecutable(craft.CPUARM64))
	if err != nil || info.Signed {
		t.Fatalf("unsigned: %+v %v", info, err)
	}
	b[40] ^= 1
	if _, err := verifyBytes(b); err == nil {
		t.Fatal("changed crafted file verified")
	}
}

// BenchmarkVerify measures verification throughput (bytes/s) on Go's
// ad-hoc signed darwin/arm64 output; a 150 MB mongod scales linearly.
func BenchmarkVerify(b *testing.B) {
	bins := goDarwin(b)
	data, err := os.ReadFile(bins["arm64"])
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := verifyBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}
