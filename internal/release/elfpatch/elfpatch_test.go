package elfpatch

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/natives/bottle"
	"github.com/second-inc/second-release/internal/testsupport"
)

// hostLoader is the interpreter of the host's own /bin/ls.
func hostLoader(t *testing.T) string {
	t.Helper()
	info, err := inspect("/bin/ls")
	if err != nil || info.Interp == "" {
		t.Skipf("needs a dynamically linked ELF /bin/ls (%v)", err)
	}
	return info.Interp
}

func TestRewriteInterpreterAndRunpathThenRuns(t *testing.T) {
	loader := hostLoader(t)
	bin := filepath.Join(t.TempDir(), "ls")
	testsupport.BottleELF(t, "/bin/ls", bin, bottle.RedisRunpath)
	if err := exec.Command(bin, "--version").Run(); err == nil {
		t.Fatal("the placeholder copy started; the fixture is not what a bottle looks like")
	}
	info, err := inspect(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Interp != bottle.Interpreter || len(info.Runpath) != 1 || info.Runpath[0] != bottle.RedisRunpath {
		t.Fatalf("fixture: %+v", info)
	}
	changes, err := Rewrite(bin, func(field, old string) (string, bool) {
		if field == FieldInterp {
			return loader, true
		}
		return "$ORIGIN/../lib", true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{FieldInterp, bottle.Interpreter, loader}, {FieldRunpath, bottle.RedisRunpath, "$ORIGIN/../lib"}}
	if len(changes) != 2 || changes[0] != want[0] || changes[1] != want[1] {
		t.Fatalf("changes: %+v", changes)
	}
	// Other tools read the result the same way.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := f.DynString(elf.DT_RUNPATH)
	f.Close()
	if len(rp) != 1 || rp[0] != "$ORIGIN/../lib" {
		t.Fatalf("debug/elf reads RUNPATH %q", rp)
	}
	cmd := exec.Command(bin, "--version")
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rewritten binary does not start: %v\n%s", err, out)
	}
	// A second pass finds nothing left to do.
	again, err := Rewrite(bin, func(field, old string) (string, bool) { return old, true })
	if err != nil || len(again) != 0 {
		t.Fatalf("second pass: %v %+v", err, again)
	}
}

func TestRefusesWhatDoesNotFit(t *testing.T) {
	hostLoader(t)
	bin := filepath.Join(t.TempDir(), "ls")
	testsupport.BottleELF(t, "/bin/ls", bin, "/short")
	before, _ := os.ReadFile(bin)
	long := strings.Repeat("/x", 40)
	for _, tc := range []struct{ field, want string }{
		{FieldInterp, `new PT_INTERP "` + long + `" (80 bytes and a NUL) does not fit in place of "` + bottle.Interpreter + `" (30 bytes)`},
		{FieldRunpath, `new DT_RUNPATH "` + long + `" (80 bytes) does not fit in place of "/short" (6 bytes)`},
	} {
		_, err := Rewrite(bin, func(field, old string) (string, bool) {
			if field == tc.field {
				return long, true
			}
			return "/y", true // fits, but nothing may be written when another change fails
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bin) {
			t.Fatalf("%s: %v", tc.field, err)
		}
		if after, _ := os.ReadFile(bin); !bytes.Equal(before, after) {
			t.Fatalf("%s: a refused rewrite changed the file", tc.field)
		}
	}
}

// GNU ld stores a string once when it is the tail of another, so a
// RUNPATH ending in "libc.so.6" also holds the DT_NEEDED name.
func TestRefusesSharedString(t *testing.T) {
	hostLoader(t)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("needs gcc to link a file whose RUNPATH shares bytes with DT_NEEDED")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.c")
	os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644)
	bin := filepath.Join(dir, "m")
	if out, err := exec.Command(gcc, "-o", bin, src, "-Wl,--enable-new-dtags,-rpath,/opt/xlibc.so.6").CombinedOutput(); err != nil {
		t.Skipf("gcc: %v\n%s", err, out)
	}
	p, err := func() (*parsed, error) {
		fh, err := os.Open(bin)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		return parse(fh)
	}()
	if err != nil {
		t.Fatal(err)
	}
	shared := false
	for _, r := range p.refs {
		shared = shared || (!r.searchPath && r.off > p.paths[0].strOff && r.off < p.paths[0].strOff+uint64(len(p.paths[0].value)))
	}
	if !shared {
		t.Skip("this linker did not merge the strings; nothing to test")
	}
	before, _ := os.ReadFile(bin)
	_, err = Rewrite(bin, func(field, old string) (string, bool) { return "$ORIGIN", field == FieldRunpath })
	if err == nil || !strings.Contains(err.Error(), `DT_RUNPATH "/opt/xlibc.so.6" shares its bytes in .dynstr with DT_NEEDED`) {
		t.Fatalf("want a refusal naming DT_NEEDED, got %v", err)
	}
	if after, _ := os.ReadFile(bin); !bytes.Equal(before, after) {
		t.Fatal("a refused rewrite changed the file")
	}
}

func TestNotELF(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x")
	os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755)
	if _, err := Rewrite(f, func(string, string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "not a readable ELF file") {
		t.Fatalf("got %v", err)
	}
}

// fileInfo is what a file's interpreter and search paths hold now.
type fileInfo struct {
	Interp  string   // "" when there is no PT_INTERP
	Runpath []string // one per DT_RUNPATH entry
	Rpath   []string // one per DT_RPATH entry
}

// inspect reads a file's interpreter and search paths, so tests can check
// a fixture before and after Rewrite.
func inspect(path string) (fileInfo, error) {
	fh, err := os.Open(path)
	if err != nil {
		return fileInfo{}, err
	}
	defer fh.Close()
	p, err := parse(fh)
	if err != nil {
		return fileInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	info := fileInfo{Interp: p.interp}
	for _, s := range p.paths {
		if s.tag == elf.DT_RUNPATH {
			info.Runpath = append(info.Runpath, s.value)
		} else {
			info.Rpath = append(info.Rpath, s.value)
		}
	}
	return info, nil
}
