package natives

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/elfpatch"
	"github.com/second-inc/second-release/internal/release/platform"
)

// fromHomebrew reports a load path that only exists in a Homebrew install:
// a relocation placeholder a bottle carries (@@HOMEBREW_PREFIX@@,
// @@HOMEBREW_CELLAR@@, ...) or the default Linux prefix a poured keg has.
func fromHomebrew(s string) bool {
	return strings.Contains(s, "@@HOMEBREW_") || strings.Contains(s, "/home/linuxbrew/.linuxbrew/")
}

// runtimePrefix is where RuntimeDir sits in a payload; manifest paths are
// relative to the payload root.
var runtimePrefix = path.Dir(binarycheck.PayloadLibDir)

// RelocateELF makes Homebrew Linux bottle files runnable where they land:
// in each ELF file among files (slash paths relative to runtimeDir), an
// interpreter carrying a Homebrew placeholder (or Homebrew's Linux prefix)
// becomes the target's system loader, and a DT_RUNPATH/DT_RPATH carrying
// one becomes the $ORIGIN-relative path to runtimeDir/lib ("$ORIGIN/../lib"
// from bin/, "$ORIGIN" from lib/).
// Files without placeholders are left alone. The strings are rewritten in
// place (elfpatch); one that does not fit fails with the file and field.
func RelocateELF(runtimeDir string, p platform.Platform, files []string) ([]manifest.Rewrite, error) {
	loader := binarycheck.StandardInterpreter(p.GOARCH)
	sort.Strings(files)
	var out []manifest.Rewrite
	for _, rel := range files {
		file := filepath.Join(runtimeDir, filepath.FromSlash(rel))
		if isELF, err := elfMagic(file); err != nil {
			return nil, err
		} else if !isELF {
			continue
		}
		lib, err := filepath.Rel(path.Dir(rel), "lib")
		if err != nil {
			return nil, err
		}
		origin := "$ORIGIN"
		if lib != "." {
			origin += "/" + filepath.ToSlash(lib)
		}
		changes, err := elfpatch.Rewrite(file, func(field, old string) (string, bool) {
			if !fromHomebrew(old) {
				return "", false
			}
			if field == elfpatch.FieldInterp {
				return loader, loader != ""
			}
			return origin, true
		})
		if err != nil {
			return nil, fmt.Errorf("relocate %s: %w", rel, err)
		}
		for _, c := range changes {
			out = append(out, manifest.Rewrite{File: path.Join(runtimePrefix, rel), Field: c.Field, Old: c.Old, New: c.New})
		}
	}
	return out, nil
}

func elfMagic(file string) (bool, error) {
	fh, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	var b [4]byte
	if _, err := io.ReadFull(fh, b[:]); err != nil {
		return false, nil
	}
	return bytes.Equal(b[:], []byte(elf.ELFMAG)), nil
}
