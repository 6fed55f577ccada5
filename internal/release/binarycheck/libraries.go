package binarycheck

import (
	"debug/elf"
	"debug/macho"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/second-inc/second-release/internal/release/machosig"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Floors are the oldest systems the payload must run on, from the natives
// lock. An empty floor is not checked.
type Floors struct {
	GLIBC   string `json:"glibc,omitempty"`   // e.g. "2.31": Debian 11, Ubuntu 20.04
	GLIBCXX string `json:"glibcxx,omitempty"` // e.g. "3.4.28": libstdc++ of GCC 10
	MacOS   string `json:"macos,omitempty"`   // e.g. "14.0"
}

// Options configures Check.
type Options struct {
	Platform platform.Platform
	Floors   Floors
	// LibDir is the shipped library directory, slash path relative to the
	// root (PayloadLibDir for a payload, "lib" for a runtime dir alone).
	LibDir string
	// Covered lists files (slash paths relative to the root) the runtime
	// starts with DYLD_LIBRARY_PATH/LD_LIBRARY_PATH = LibDir; libraries in
	// LibDir are covered too, since they load into those processes.
	Covered []string
	// SystemLibraries adds Linux sonames the target OS is required to
	// provide, beyond glibc's own and the C/C++ runtime (DefaultLinuxSystem).
	SystemLibraries []string
	// RequireSignatures reports arm64 Mach-O code without a code signature
	// (Apple silicon refuses to run it). Signatures that are present are
	// always verified against the file's bytes.
	RequireSignatures bool
}

// Payload paths of the runtime rule; the runtime reads these too.
const (
	PayloadLibDir = "dist/runtime/lib"
	PayloadBinDir = "dist/runtime/bin"
)

// PayloadOptions is the rule for a whole payload package tree.
func PayloadOptions(p platform.Platform, f Floors, systemLibs []string) Options {
	return Options{
		Platform:          p,
		Floors:            f,
		LibDir:            PayloadLibDir,
		Covered:           []string{PayloadBinDir + "/mongod", PayloadBinDir + "/redis-server"},
		SystemLibraries:   systemLibs,
		RequireSignatures: true,
	}
}

// RuntimeOptions is the same rule for a dist/runtime directory on its own.
func RuntimeOptions(p platform.Platform, f Floors, systemLibs []string) Options {
	return Options{
		Platform:          p,
		Floors:            f,
		LibDir:            "lib",
		Covered:           []string{"bin/mongod", "bin/redis-server"},
		SystemLibraries:   systemLibs,
		RequireSignatures: true,
	}
}

// DefaultLinuxSystem returns the sonames every glibc Linux system has:
// glibc's own libraries and the GCC runtime libraries the base system is
// built with.
func DefaultLinuxSystem() []string {
	return []string{
		"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
		"libresolv.so.2", "libutil.so.1", "libanl.so.1", "libnsl.so.1",
		"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
		"libgcc_s.so.1", "libstdc++.so.6", "libz.so.1",
	}
}

// StandardInterpreter is the glibc loader path for a Go arch.
func StandardInterpreter(goarch string) string {
	switch goarch {
	case "amd64":
		return "/lib64/ld-linux-x86-64.so.2"
	case "arm64":
		return "/lib/ld-linux-aarch64.so.1"
	}
	return ""
}

// isBuildHostPath: paths that exist only on the machine that built a
// binary (Homebrew's prefixes, its relocation placeholders, the Nix store).
func isBuildHostPath(p string) bool {
	for _, pre := range []string{
		"/opt/homebrew/", "/usr/local/Cellar/", "/usr/local/opt/", "/usr/local/Homebrew/",
		"/home/linuxbrew/", "@@HOMEBREW_", "/nix/store/",
	} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// Check runs CheckPlatform and the library, interpreter and floor checks
// over root and returns every violation, sorted by path.
func Check(root string, o Options) ([]Violation, error) {
	c := &checker{root: root, o: o, covered: map[string]bool{}, system: map[string]bool{}}
	for _, p := range o.Covered {
		c.covered[p] = true
	}
	for _, s := range DefaultLinuxSystem() {
		c.system[s] = true
	}
	for _, s := range o.SystemLibraries {
		c.system[s] = true
	}
	var out []Violation
	err := walkBinaries(root, func(rel, p string, k kind) error {
		for _, prob := range platformProblems(p, k, o.Platform) {
			out = append(out, Violation{rel, prob})
		}
		var probs []string
		var err error
		switch k {
		case kindELF:
			probs, err = c.elf(rel, p)
		case kindMachO:
			probs, err = c.machoFile(rel, p)
		case kindFat:
			probs, err = c.fat(rel, p)
		}
		if err != nil {
			return err
		}
		for _, prob := range probs {
			out = append(out, Violation{rel, prob})
		}
		return nil
	})
	sortViolations(out)
	return out, err
}

type checker struct {
	root    string
	o       Options
	covered map[string]bool
	system  map[string]bool
}

// isCovered: the file runs with the library path set to LibDir.
func (c *checker) isCovered(rel string) bool {
	return c.covered[rel] || (c.o.LibDir != "" && path.Dir(rel) == c.o.LibDir)
}

// exists reports whether a slash path relative to the root is a file in the tree.
func (c *checker) exists(rel string) bool {
	rel = path.Clean(rel)
	if rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
		return false
	}
	st, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(rel)))
	return err == nil && st.Mode().IsRegular()
}

func (c *checker) inLibDir(leaf string) bool {
	return c.o.LibDir != "" && c.exists(path.Join(c.o.LibDir, leaf))
}

// ---- ELF ----

func (c *checker) elf(rel, p string) ([]string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return nil, nil // already reported by platformProblems
	}
	defer f.Close()
	var probs []string
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			probs = append(probs, "unreadable ELF interpreter: "+err.Error())
			continue
		}
		interp := strings.TrimRight(string(b), "\x00")
		if want := StandardInterpreter(c.o.Platform.GOARCH); interp != want {
			probs = append(probs, fmt.Sprintf("ELF interpreter %s is not the system loader %s", interp, want))
		}
	}
	needed, _ := f.DynString(elf.DT_NEEDED)
	rpaths, _ := f.DynString(elf.DT_RPATH)
	runpaths, _ := f.DynString(elf.DT_RUNPATH)
	covered := c.isCovered(rel)
	dir := path.Dir(rel)
	var search []string // $ORIGIN-relative directories inside the tree
	for _, list := range [][]string{rpaths, runpaths} {
		for _, rp := range list {
			for _, d := range strings.Split(rp, ":") {
				switch {
				case d == "":
				case strings.HasPrefix(d, "$ORIGIN"), strings.HasPrefix(d, "${ORIGIN}"):
					d = strings.TrimPrefix(strings.TrimPrefix(d, "$ORIGIN"), "${ORIGIN}")
					search = append(search, path.Join(dir, d))
				case isBuildHostPath(d) && (len(rpaths) > 0 || !covered):
					// DT_RPATH is searched before LD_LIBRARY_PATH, so a
					// build-host entry there is never overridden.
					probs = append(probs, fmt.Sprintf("library search path %s points into the build host", d))
				}
			}
		}
	}
	for _, n := range needed {
		if strings.Contains(n, "/") {
			probs = append(probs, fmt.Sprintf("needs %s by path: only bare sonames resolve through the library path rule", n))
			continue
		}
		if c.system[n] || (covered && c.inLibDir(n)) {
			continue
		}
		found := false
		for _, d := range search {
			found = found || c.exists(path.Join(d, n))
		}
		if found {
			continue
		}
		switch {
		case c.inLibDir(n):
			probs = append(probs, fmt.Sprintf("needs %s, shipped in %s, but this file is not started with LD_LIBRARY_PATH=%s", n, c.o.LibDir, c.o.LibDir))
		default:
			probs = append(probs, fmt.Sprintf("needs %s, which is neither a system library nor shipped in %s", n, c.o.LibDir))
		}
	}
	probs = append(probs, c.elfVersions(f)...)
	return probs, nil
}

func (c *checker) elfVersions(f *elf.File) []string {
	needs, err := f.DynamicVersionNeeds()
	if err != nil || len(needs) == 0 {
		return nil
	}
	type floorSpec struct{ prefix, floor string }
	specs := []floorSpec{{"GLIBC_", c.o.Floors.GLIBC}, {"GLIBCXX_", c.o.Floors.GLIBCXX}}
	var probs []string
	for _, s := range specs {
		if s.floor == "" {
			continue
		}
		var newest string
		var libs []string
		for _, n := range needs {
			for _, d := range n.Needs {
				v, ok := strings.CutPrefix(d.Dep, s.prefix)
				if !ok || !isVersion(v) || compareVersions(v, s.floor) <= 0 {
					continue
				}
				if newest == "" || compareVersions(v, newest) > 0 {
					newest = v
				}
				libs = append(libs, n.Name+" "+d.Dep)
			}
		}
		if newest != "" {
			sort.Strings(libs)
			probs = append(probs, fmt.Sprintf("needs %s%s, newer than the floor %s%s (%s)", s.prefix, newest, s.prefix, s.floor, strings.Join(libs, ", ")))
		}
	}
	return probs
}

// ---- Mach-O ----

// Load command numbers debug/macho does not name.
const (
	lcReqDyld          = 0x80000000
	lcLoadDylib        = 0xc
	lcLoadWeakDylib    = 0x18 | lcReqDyld
	lcReexportDylib    = 0x1f | lcReqDyld
	lcLazyLoadDylib    = 0x20
	lcLoadUpwardDylib  = 0x23 | lcReqDyld
	lcRpath            = 0x1c | lcReqDyld
	lcVersionMinMacOSX = 0x24
	lcBuildVersion     = 0x32
	platformMacOS      = 1
)

func (c *checker) fat(rel, p string) ([]string, error) {
	ff, err := macho.OpenFat(p)
	if err != nil {
		return nil, nil
	}
	defer ff.Close()
	var probs []string
	for _, a := range ff.Arches {
		for _, prob := range c.macho(rel, a.File) {
			probs = append(probs, a.Cpu.String()+" slice: "+prob)
		}
	}
	return append(probs, c.signatures(p, true)...), nil
}

func (c *checker) machoFile(rel, p string) ([]string, error) {
	f, err := macho.Open(p)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	return append(c.macho(rel, f), c.signatures(p, false)...), nil
}

// signatures recomputes every code page hash of every slice against the
// file (a changed byte or a load command rewritten without re-signing is
// killed on launch on a Mac) and, when required, reports unsigned arm64
// code.
func (c *checker) signatures(p string, fat bool) []string {
	slices, err := machosig.VerifyFile(p)
	if err != nil {
		return nil // unreadable: already reported by platformProblems
	}
	var probs []string
	for _, s := range slices {
		prefix := ""
		if fat {
			prefix = s.Cpu.String() + " slice: "
		}
		switch {
		case s.Err != nil:
			probs = append(probs, prefix+"code signature does not match the file: "+s.Err.Error())
		case !s.Info.Signed && s.Cpu == macho.CpuArm64 && c.o.RequireSignatures:
			probs = append(probs, prefix+"no code signature (LC_CODE_SIGNATURE): macOS on Apple silicon refuses to run unsigned arm64 code; sign it (ad hoc at least)")
		}
	}
	return probs
}

// machoInfo is what the checks need from a Mach-O's load commands.
type machoInfo struct {
	dylibs []string
	rpaths []string
	minOS  string
}

func readMachoInfo(f *macho.File) machoInfo {
	var mi machoInfo
	bo := f.ByteOrder
	str := func(raw []byte, off uint32) string {
		if int(off) >= len(raw) {
			return ""
		}
		s := raw[off:]
		if i := strings.IndexByte(string(s), 0); i >= 0 {
			s = s[:i]
		}
		return string(s)
	}
	for _, l := range f.Loads {
		raw := l.Raw()
		if len(raw) < 12 {
			continue
		}
		switch cmd := bo.Uint32(raw); cmd {
		case lcLoadDylib, lcLoadWeakDylib, lcReexportDylib, lcLazyLoadDylib, lcLoadUpwardDylib:
			mi.dylibs = append(mi.dylibs, str(raw, bo.Uint32(raw[8:])))
		case lcRpath:
			mi.rpaths = append(mi.rpaths, str(raw, bo.Uint32(raw[8:])))
		case lcBuildVersion:
			if len(raw) >= 16 && bo.Uint32(raw[8:]) == platformMacOS {
				mi.minOS = decodeMachoVersion(bo.Uint32(raw[12:]))
			}
		case lcVersionMinMacOSX:
			if mi.minOS == "" {
				mi.minOS = decodeMachoVersion(bo.Uint32(raw[8:]))
			}
		}
	}
	return mi
}

// decodeMachoVersion renders xxxx.yy.zz nibble-packed versions.
func decodeMachoVersion(v uint32) string {
	s := fmt.Sprintf("%d.%d", v>>16, (v>>8)&0xff)
	if p := v & 0xff; p != 0 {
		s += "." + strconv.Itoa(int(p))
	}
	return s
}

func (c *checker) macho(rel string, f *macho.File) []string {
	mi := readMachoInfo(f)
	var probs []string
	if c.o.Floors.MacOS != "" && mi.minOS != "" && compareVersions(mi.minOS, c.o.Floors.MacOS) > 0 {
		probs = append(probs, fmt.Sprintf("needs macOS %s, newer than the floor %s", mi.minOS, c.o.Floors.MacOS))
	}
	covered := c.isCovered(rel)
	dir := path.Dir(rel)
	isExe := f.Type == macho.TypeExec
	// expand resolves @loader_path/@executable_path to a tree path; ok is
	// false when the prefix cannot be resolved inside the tree.
	expand := func(p string) (string, bool) {
		switch {
		case strings.HasPrefix(p, "@loader_path/"):
			return path.Join(dir, strings.TrimPrefix(p, "@loader_path/")), true
		case strings.HasPrefix(p, "@executable_path/") && isExe:
			return path.Join(dir, strings.TrimPrefix(p, "@executable_path/")), true
		}
		return "", false
	}
	for _, rp := range mi.rpaths {
		if isBuildHostPath(rp) && !covered {
			probs = append(probs, fmt.Sprintf("LC_RPATH %s points into the build host", rp))
		}
	}
	for _, lib := range mi.dylibs {
		leaf := path.Base(lib)
		switch {
		case isMacSystem(lib):
			continue
		case covered && c.inLibDir(leaf):
			continue // DYLD_LIBRARY_PATH finds the leaf name first
		}
		if t, ok := expand(lib); ok && c.exists(t) {
			continue
		}
		if rest, ok := strings.CutPrefix(lib, "@rpath/"); ok {
			found := false
			for _, rp := range mi.rpaths {
				if d, ok := expand(rp + "/"); ok && c.exists(path.Join(d, rest)) {
					found = true
				}
			}
			if found {
				continue
			}
		}
		switch {
		case c.inLibDir(leaf):
			probs = append(probs, fmt.Sprintf("loads %s, shipped in %s, but this file is not started with DYLD_LIBRARY_PATH=%s", lib, c.o.LibDir, c.o.LibDir))
		case isBuildHostPath(lib):
			probs = append(probs, fmt.Sprintf("loads %s from the build host, and %s is not shipped in %s", lib, leaf, c.o.LibDir))
		default:
			probs = append(probs, fmt.Sprintf("loads %s, which is neither a system library nor shipped in %s", lib, c.o.LibDir))
		}
	}
	return probs
}

// isMacSystem: libraries every macOS provides (in the dyld shared cache).
func isMacSystem(p string) bool {
	return strings.HasPrefix(p, "/usr/lib/") || strings.HasPrefix(p, "/System/Library/")
}

// ---- versions ----

func isVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if _, err := strconv.Atoi(part); err != nil {
			return false
		}
	}
	return true
}

// compareVersions compares dotted numeric versions; missing parts are 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
