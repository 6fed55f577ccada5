// Package nodemods makes the native node modules in a built tree (the Next.js
// standalone server, the worker's kept-external packages) match the payload's
// target platform instead of the build host, and checks that nothing built
// for another platform is left.
package nodemods

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Package is one installed npm package found in a tree.
type Package struct {
	Name, Version string
	Dir           string // absolute
	Rel           string // relative to the scanned root, slash-separated
	OS, CPU, Libc []string
	Deps          []string // names in dependencies and optionalDependencies
	NativeFiles   []string // .node files, relative to Dir (nested packages excluded)
}

// ID is name@version.
func (p Package) ID() string { return p.Name + "@" + p.Version }

// PlatformSpecific reports whether the package declares os or cpu, i.e. is
// one platform's variant of something.
func (p Package) PlatformSpecific() bool { return len(p.OS) > 0 || len(p.CPU) > 0 }

// Native reports whether the package is platform-specific or ships .node files.
func (p Package) Native() bool { return p.PlatformSpecific() || len(p.NativeFiles) > 0 }

// C libraries of Linux targets, as npm's "libc" field names them.
const (
	Glibc = binarycheck.Glibc
	Musl  = binarycheck.Musl
)

// Supports reports whether npm would install the package on target with
// glibc: the payloads run on ordinary desktop distributions.
func (p Package) Supports(target platform.Platform) bool { return p.SupportsLibc(target, Glibc) }

// SupportsLibc reports whether npm would install the package on target with
// C library libc (Glibc or Musl; ignored off Linux).
func (p Package) SupportsLibc(target platform.Platform, libc string) bool {
	if !allowed(p.OS, target.NodeOS) || !allowed(p.CPU, target.CPU) {
		return false
	}
	return target.NodeOS != "linux" || allowed(p.Libc, libc)
}

// allowed applies npm's os/cpu list rules: empty allows all, "!x" denies x,
// and any positive entry makes the list exclusive.
func allowed(list []string, v string) bool {
	positive := false
	for _, e := range list {
		if e == "!"+v {
			return false
		}
		if !strings.HasPrefix(e, "!") {
			positive = true
		}
	}
	return !positive || slices.Contains(list, v)
}

type packageJSON struct {
	Name                 string            `json:"name"`
	Version              string            `json:"version"`
	OS                   stringList        `json:"os"`
	CPU                  stringList        `json:"cpu"`
	Libc                 stringList        `json:"libc"`
	Dependencies         map[string]string `json:"dependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
}

// stringList accepts npm's "os": "linux" shorthand as well as a list.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// Scan lists the packages installed under root's node_modules directories
// (nested ones included), sorted by path.
func Scan(root string) ([]Package, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	var pkgs []Package
	var nodeFiles []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".node") {
			nodeFiles = append(nodeFiles, p)
			return nil
		}
		if !d.IsDir() || !isPackageDir(p) {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(p, "package.json"))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		var pj packageJSON
		if err := json.Unmarshal(data, &pj); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(p, "package.json"), err)
		}
		rel, _ := filepath.Rel(root, p)
		pkg := Package{
			Name: pj.Name, Version: pj.Version, Dir: p, Rel: filepath.ToSlash(rel),
			OS: pj.OS, CPU: pj.CPU, Libc: pj.Libc,
		}
		if pkg.Name == "" {
			pkg.Name = packageNameFromPath(p)
		}
		for n := range pj.Dependencies {
			pkg.Deps = append(pkg.Deps, n)
		}
		for n := range pj.OptionalDependencies {
			if !slices.Contains(pkg.Deps, n) {
				pkg.Deps = append(pkg.Deps, n)
			}
		}
		sort.Strings(pkg.Deps)
		pkgs = append(pkgs, pkg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan node modules in %s: %w", root, err)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].Rel < pkgs[j].Rel })
	// Give each .node file to its innermost package.
	for _, f := range nodeFiles {
		best := -1
		for i, p := range pkgs {
			if strings.HasPrefix(f, p.Dir+string(filepath.Separator)) && (best < 0 || len(p.Dir) > len(pkgs[best].Dir)) {
				best = i
			}
		}
		if best >= 0 {
			rel, _ := filepath.Rel(pkgs[best].Dir, f)
			pkgs[best].NativeFiles = append(pkgs[best].NativeFiles, filepath.ToSlash(rel))
		}
	}
	return pkgs, nil
}

// isPackageDir reports whether p is node_modules/<name> or node_modules/@scope/<name>.
func isPackageDir(p string) bool {
	parent := filepath.Base(filepath.Dir(p))
	if parent == "node_modules" {
		return !strings.HasPrefix(filepath.Base(p), "@") && !strings.HasPrefix(filepath.Base(p), ".")
	}
	return strings.HasPrefix(parent, "@") && filepath.Base(filepath.Dir(filepath.Dir(p))) == "node_modules"
}

func packageNameFromPath(p string) string {
	parent := filepath.Base(filepath.Dir(p))
	if strings.HasPrefix(parent, "@") {
		return parent + "/" + filepath.Base(p)
	}
	return filepath.Base(p)
}

// nodeModulesDir is the node_modules directory a package sits in.
func nodeModulesDir(p Package) string {
	d := filepath.Dir(p.Dir)
	if strings.HasPrefix(p.Name, "@") {
		d = filepath.Dir(d)
	}
	return d
}
