package nodemods

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Check lists what in dir is not for target with glibc (the payloads'
// C library); see CheckLibc.
func Check(dir string, target platform.Platform) ([]string, error) {
	return CheckLibc(dir, target, Glibc)
}

// CheckLibc lists what in dir is not for target with C library libc:
// platform-specific packages whose os/cpu/libc exclude it, and ELF/Mach-O/PE
// files (the .node addons and the shared libraries they load) built for
// another platform or linked against the other C library, each named with
// the package it belongs to. Empty means clean.
func CheckLibc(dir string, target platform.Platform, libc string) ([]string, error) {
	pkgs, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	want := target.ID
	if target.NodeOS == "linux" {
		want += " with " + libc
	}
	var bad []string
	for _, p := range pkgs {
		if p.PlatformSpecific() && !p.SupportsLibc(target, libc) {
			bad = append(bad, fmt.Sprintf("%s: package %s is for os %v cpu %v libc %v, not %s", p.Rel, p.ID(), p.OS, p.CPU, p.Libc, want))
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, ok, err := binarycheck.Identify(p)
		if err != nil {
			return err
		}
		if ok && !b.RunsWith(target, libc) {
			rel, _ := filepath.Rel(dir, p)
			msg := fmt.Sprintf("%s: %s binary, not %s", filepath.ToSlash(rel), b, want)
			if pkg := owningPackage(pkgs, p); pkg != nil {
				msg += " (package " + pkg.ID() + ")"
			}
			bad = append(bad, msg)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check native modules in %s: %w", dir, err)
	}
	sort.Strings(bad)
	return bad, nil
}

// owningPackage is the innermost package whose directory holds file.
func owningPackage(pkgs []Package, file string) *Package {
	var best *Package
	for i := range pkgs {
		if strings.HasPrefix(file, pkgs[i].Dir+string(filepath.Separator)) && (best == nil || len(pkgs[i].Dir) > len(best.Dir)) {
			best = &pkgs[i]
		}
	}
	return best
}
