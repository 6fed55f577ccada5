// Package binarycheck inspects every ELF and Mach-O file in a payload tree
// and reports what would stop it running on the target platform: the wrong
// OS or CPU, libraries that are neither system libraries nor shipped in
// dist/runtime/lib, build-host paths, a non-standard ELF interpreter, glibc
// or macOS requirements newer than the lock's floor, and Mach-O code
// signatures that no longer match the file (or are missing on arm64).
//
// Library resolution rule (the runtime must follow it): on macOS the build
// never rewrites load paths (that would break the code signatures). When the
// runtime starts mongod or redis-server — and only those two — it sets
// DYLD_LIBRARY_PATH (macOS) or LD_LIBRARY_PATH (Linux) to the payload's
// dist/runtime/lib. dyld then finds a dependency by its leaf name in that
// directory before trying the recorded path, and ld.so finds a DT_NEEDED
// soname there before the system directories. On Linux the build also
// rewrites Homebrew's placeholder interpreter and search paths (see
// natives.RelocateELF), so $ORIGIN-relative RUNPATHs resolve shipped
// libraries without any variable. A library load is therefore satisfied
// when it is a system library, resolves through $ORIGIN/@loader_path/@rpath
// to a file in the tree, or its leaf name is shipped in dist/runtime/lib and
// the loading file is covered by the rule.
package binarycheck

import (
	"bytes"
	"debug/elf"
	"debug/macho"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/platform"
)

// Violation is one problem with one file; Path is slash-separated and
// relative to the checked root.
type Violation struct {
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

func (v Violation) String() string { return v.Path + ": " + v.Problem }

// Error lists violations in full; Check's callers return it to fail a build.
type Error struct{ Violations []Violation }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d native binary problem(s):", len(e.Violations))
	for _, v := range e.Violations {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}

// AsError is nil for no violations, else an *Error listing them all.
func AsError(vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	return &Error{Violations: vs}
}

// kind is the object format a file's first bytes announce.
type kind int

const (
	kindNone kind = iota
	kindELF
	kindMachO
	kindFat
	kindPE // Windows; only Identify reports these, the payload checks skip them
)

// maxFatArches bounds a universal Mach-O's architecture count. Java class
// files share the fat magic (0xCAFEBABE); where a fat header has its small
// nfat_arch, a class file has minor and major version, and the major version
// of every class file is at least 45, so the word is never below 45.
const maxFatArches = 45

// sniff reads a file's magic number and tells a universal Mach-O from a Java
// class file by the word after the magic (see maxFatArches).
func sniff(path string) (kind, error) {
	f, err := os.Open(path)
	if err != nil {
		return kindNone, err
	}
	defer f.Close()
	var hdr [8]byte
	n, err := io.ReadFull(f, hdr[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return kindNone, err
	}
	if n < 4 {
		return kindNone, nil
	}
	if bytes.Equal(hdr[:4], []byte(elf.ELFMAG)) {
		return kindELF, nil
	}
	be := binary.BigEndian.Uint32(hdr[:4])
	le := binary.LittleEndian.Uint32(hdr[:4])
	switch {
	case be == macho.Magic32 || be == macho.Magic64 || le == macho.Magic32 || le == macho.Magic64:
		return kindMachO, nil
	case be == macho.MagicFat && n == 8 && binary.BigEndian.Uint32(hdr[4:]) < maxFatArches:
		return kindFat, nil
	case hdr[0] == 'M' && hdr[1] == 'Z':
		return kindPE, nil
	}
	return kindNone, nil
}

// walkBinaries calls fn for every regular ELF/Mach-O file under root, in
// lexical order, with its slash path relative to root.
func walkBinaries(root string, fn func(rel, path string, k kind) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", path, err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		k, err := sniff(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if k == kindNone || k == kindPE {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), path, k)
	})
}

func elfMachine(goarch string) elf.Machine {
	switch goarch {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	}
	return elf.EM_NONE
}

func machoCPU(goarch string) macho.Cpu {
	switch goarch {
	case "amd64":
		return macho.CpuAmd64
	case "arm64":
		return macho.CpuArm64
	}
	return 0
}

// CheckPlatform reports every ELF or Mach-O file under root that cannot run
// on p: the wrong object format for p's OS, or the wrong CPU. A fat Mach-O
// passes when it holds a slice for p's CPU. Unparseable binaries are
// violations too, since nothing vouches for them.
func CheckPlatform(root string, p platform.Platform) ([]Violation, error) {
	var out []Violation
	err := walkBinaries(root, func(rel, path string, k kind) error {
		for _, prob := range platformProblems(path, k, p) {
			out = append(out, Violation{Path: rel, Problem: prob})
		}
		return nil
	})
	return out, err
}

func platformProblems(path string, k kind, p platform.Platform) []string {
	switch k {
	case kindELF:
		f, err := elf.Open(path)
		if err != nil {
			return []string{"unreadable ELF file: " + err.Error()}
		}
		defer f.Close()
		var probs []string
		if p.GOOS != "linux" {
			probs = append(probs, fmt.Sprintf("ELF (Linux) binary in a %s payload", p.ID))
		} else if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
			probs = append(probs, fmt.Sprintf("ELF OS ABI %s, want Linux/System V", f.OSABI))
		}
		if want := elfMachine(p.GOARCH); f.Machine != want || f.Class != elf.ELFCLASS64 {
			probs = append(probs, fmt.Sprintf("ELF for %s (%s), want %s for %s", f.Machine, f.Class, want, p.ID))
		}
		return probs
	case kindMachO:
		f, err := macho.Open(path)
		if err != nil {
			return []string{"unreadable Mach-O file: " + err.Error()}
		}
		defer f.Close()
		var probs []string
		if p.GOOS != "darwin" {
			probs = append(probs, fmt.Sprintf("Mach-O (macOS) binary in a %s payload", p.ID))
		}
		if want := machoCPU(p.GOARCH); f.Cpu != want {
			probs = append(probs, fmt.Sprintf("Mach-O for %s, want %s for %s", f.Cpu, want, p.ID))
		}
		return probs
	case kindFat:
		f, err := macho.OpenFat(path)
		if err != nil {
			return []string{"unreadable universal Mach-O file: " + err.Error()}
		}
		defer f.Close()
		var probs []string
		if p.GOOS != "darwin" {
			probs = append(probs, fmt.Sprintf("universal Mach-O (macOS) binary in a %s payload", p.ID))
		}
		want := machoCPU(p.GOARCH)
		var have []string
		found := false
		for _, a := range f.Arches {
			have = append(have, a.Cpu.String())
			found = found || a.Cpu == want
		}
		if !found {
			probs = append(probs, fmt.Sprintf("universal Mach-O without a %s slice (has %s) for %s", want, strings.Join(have, ", "), p.ID))
		}
		return probs
	}
	return nil
}

// sortViolations orders by path, then problem, so reports are stable.
func sortViolations(vs []Violation) {
	sort.SliceStable(vs, func(i, j int) bool {
		if vs[i].Path != vs[j].Path {
			return vs[i].Path < vs[j].Path
		}
		return vs[i].Problem < vs[j].Problem
	})
}
