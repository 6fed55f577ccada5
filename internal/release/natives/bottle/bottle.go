// Package bottle knows the relocation placeholders Homebrew's Linux bottles
// carry, and puts them into an ELF file with patchelf: how stand-in natives
// and tests make binaries shaped like a bottle before `brew` pours it.
package bottle

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The placeholders: the interpreter is Homebrew's own ld.so, and RUNPATHs
// point into the prefix (redis: openssl@3's opt dir first).
const (
	Prefix       = "@@HOMEBREW_PREFIX@@"
	Interpreter  = Prefix + "/lib/ld.so"
	RedisRunpath = Prefix + "/opt/openssl@3/lib:" + Prefix + "/lib"
	LibRunpath   = Prefix + "/lib"
)

// Placeholders sets file's interpreter to interp and its RUNPATH to
// runpath with patchelf, leaving either alone when it is "". patchelf reads
// an argument starting with @ as a file name, so the @@…@@ strings go
// through files in tmp.
func Placeholders(ctx context.Context, patchelf, tmp, file, interp, runpath string) error {
	var args []string
	for _, x := range []struct{ flag, val string }{{"--set-interpreter", interp}, {"--set-rpath", runpath}} {
		if x.val == "" {
			continue
		}
		f, err := os.CreateTemp(tmp, "patchelf-arg-")
		if err != nil {
			return err
		}
		_, err = f.WriteString(x.val)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		args = append(args, x.flag, "@"+f.Name())
	}
	if len(args) == 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, patchelf, append(args, file)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("patchelf %s: %v\n%s", filepath.Base(file), err, out)
	}
	return nil
}
