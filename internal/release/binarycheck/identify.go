package binarycheck

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"slices"
	"strings"

	"github.com/second-inc/second-release/internal/release/platform"
)

// Binary is what an executable or shared-library file is built for.
type Binary struct {
	Format string   // elf, macho, pe
	GOOS   string   // linux, freebsd, darwin, windows
	Arches []string // GOARCH names; a universal Mach-O has several
}

func (b Binary) String() string {
	return fmt.Sprintf("%s %s/%s", b.Format, b.GOOS, strings.Join(b.Arches, "+"))
}

// Runs reports whether the binary can run (or be loaded) on target.
func (b Binary) Runs(target platform.Platform) bool {
	return b.GOOS == target.GOOS && slices.Contains(b.Arches, target.GOARCH)
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
		return Binary{Format: "elf", GOOS: goos, Arches: []string{elfArch(f.Machine)}}, true, nil
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
