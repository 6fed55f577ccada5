package nodemods

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Check lists what in dir is not for target: platform-specific packages whose
// os/cpu exclude it, and ELF/Mach-O/PE files (the .node addons and the shared
// libraries they load) built for another platform. Empty means clean.
func Check(dir string, target platform.Platform) ([]string, error) {
	pkgs, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, p := range pkgs {
		if p.PlatformSpecific() && !p.Supports(target) {
			bad = append(bad, fmt.Sprintf("%s: package %s is for os %v cpu %v libc %v, not %s", p.Rel, p.ID(), p.OS, p.CPU, p.Libc, target.ID))
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
		if ok && !b.Runs(target) {
			rel, _ := filepath.Rel(dir, p)
			bad = append(bad, fmt.Sprintf("%s: %s binary, not %s", filepath.ToSlash(rel), b, target.ID))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check native modules in %s: %w", dir, err)
	}
	sort.Strings(bad)
	return bad, nil
}
