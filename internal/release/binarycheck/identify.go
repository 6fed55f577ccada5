package binarycheck

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/second-inc/second-release/internal/release/platform"
)

// Binary is what an executable or shared-library file is built for.
type Binary struct {
	Format string   // elf, macho, pe
	GOOS   string   // linux, freebsd, darwin, windows
	Arches []string // GOARCH names; a universal Mach-O has several
	// Libc is the C library an ELF file links against (Glibc or Musl; ""
	// when it names neither, e.g. static or libc-free).
	Libc string
}

// C libraries of Linux binaries, as npm's "libc" field names them.
const (
	Glibc = "glibc"
	Musl  = "musl"
)

func (b Binary) String() string {
	s := fmt.Sprintf("%s %s/%s", b.Format, b.GOOS, strings.Join(b.Arches, "+"))
	if b.Libc != "" {
		s += " (" + b.Libc + ")"
	}
	return s
}

// Runs reports whether the binary can run (or be loaded) on target.
func (b Binary) Runs(target platform.Platform) bool {
	return b.GOOS == target.GOOS && slices.Contains(b.Arches, target.GOARCH)
}

// RunsWith is Runs on a Linux target whose C library is libc: a glibc
// addon does not load under musl's loader, nor the reverse.
func (b Binary) RunsWith(target platform.Platform, libc string) bool {
	return b.Runs(target) && (target.GOOS != "linux" || b.Libc == "" || b.Libc == libc)
}

// elfLibc tells glibc from musl by the loader a program asks for and the
// libc soname a shared object needs (libc.so.6 vs libc.musl-<arch>.so.1).
func elfLibc(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 256))
		if err != nil {
			break
		}
		switch interp := string(b); {
		case strings.Contains(interp, "ld-musl-"):
			return Musl
		case strings.Contains(interp, "ld-linux"):
			return Glibc
		}
	}
	libs, _ := f.ImportedLibraries()
	for _, l := range libs {
		switch {
		case strings.HasPrefix(l, "libc.musl-"):
			return Musl
		case l == "libc.so.6":
			return Glibc
		}
	}
	return ""
}

// Identify says what the file at path is built for; ok is false for anything
// that is not an ELF, Mach-O (thin or universal) or PE binary. A file whose
// magic announces ELF or Mach-O but does not parse is an error: nothing can
// vouch for it. A file that merely starts with "MZ" and is no PE is text.
func Identify(path string) (b Binary, ok bool, err error) {
	k, err := sniff(path)
	if err != nil {
		return Binary{}, false, err
	}
	switch k {
	case kindELF:
		f, err := elf.Open(path)
		if err != nil {
			return Binary{}, false, fmt.Errorf("read ELF %s: %w", path, err)
		}
		defer f.Close()
		goos := "linux"
		if f.OSABI == elf.ELFOSABI_FREEBSD {
			goos = "freebsd"
		}
		return Binary{Format: "elf", GOOS: goos, Arches: []string{elfArch(f.Machine)}, Libc: elfLibc(f)}, true, nil
	case kindMachO:
		f, err := macho.Open(path)
		if err != nil {
			return Binary{}, false, fmt.Errorf("read Mach-O %s: %w", path, err)
		}
		defer f.Close()
		return Binary{Format: "macho", GOOS: "darwin", Arches: []string{machoArch(f.Cpu)}}, true, nil
	case kindFat:
		f, err := macho.OpenFat(path)
		if err != nil {
			return Binary{}, false, fmt.Errorf("read universal Mach-O %s: %w", path, err)
		}
		defer f.Close()
		b := Binary{Format: "macho", GOOS: "darwin"}
		for _, a := range f.Arches {
			b.Arches = append(b.Arches, machoArch(a.Cpu))
		}
		return b, true, nil
	case kindPE:
		f, err := pe.Open(path)
		if err != nil {
			return Binary{}, false, nil // a text file that happens to start with MZ
		}
		defer f.Close()
		return Binary{Format: "pe", GOOS: "windows", Arches: []string{peArch(f.Machine)}}, true, nil
	}
	return Binary{}, false, nil
}

func elfArch(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "amd64"
	case elf.EM_AARCH64:
		return "arm64"
	case elf.EM_386:
		return "386"
	case elf.EM_ARM:
		return "arm"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

func machoArch(c macho.Cpu) string {
	switch c {
	case macho.CpuAmd64:
		return "amd64"
	case macho.CpuArm64:
		return "arm64"
	case macho.Cpu386:
		return "386"
	case macho.CpuArm:
		return "arm"
	}
	return strings.ToLower(c.String())
}

func peArch(m uint16) string {
	switch m {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		return "amd64"
	case pe.IMAGE_FILE_MACHINE_ARM64:
		return "arm64"
	case pe.IMAGE_FILE_MACHINE_I386:
		return "386"
	}
	return fmt.Sprintf("pe-machine-%#x", m)
}
