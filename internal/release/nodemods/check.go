package nodemods

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/platform"
)

// Binary is what an executable or shared-library file is built for.
type Binary struct {
	Format string   // elf, macho, pe
	GOOS   string   // linux, darwin, windows
	Arches []string // GOARCH names; a universal Mach-O has several
}

func (b Binary) String() string {
	return fmt.Sprintf("%s %s/%s", b.Format, b.GOOS, strings.Join(b.Arches, "+"))
}

// Runs reports whether the binary can run (or be loaded) on target.
func (b Binary) Runs(target platform.Platform) bool {
	return b.GOOS == target.GOOS && slices.Contains(b.Arches, target.GOARCH)
}

// ReadBinary identifies the file at path; ok is false for anything that is
// not an ELF, Mach-O or PE binary.
func ReadBinary(path string) (b Binary, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return Binary{}, false, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return Binary{}, false, nil // shorter than any binary header
	}
	switch {
	case string(magic[:]) == "\x7fELF":
		ef, err := elf.NewFile(f)
		if err != nil {
			return Binary{}, false, fmt.Errorf("read ELF %s: %w", path, err)
		}
		goos := "linux"
		if ef.OSABI == elf.ELFOSABI_FREEBSD {
			goos = "freebsd"
		}
		return Binary{Format: "elf", GOOS: goos, Arches: []string{elfArch(ef.Machine)}}, true, nil
	case isMachO(magic):
		mf, err := macho.NewFile(f)
		if err != nil {
			return Binary{}, false, fmt.Errorf("read Mach-O %s: %w", path, err)
		}
		return Binary{Format: "macho", GOOS: "darwin", Arches: []string{machoArch(mf.Cpu)}}, true, nil
	case binary.BigEndian.Uint32(magic[:]) == macho.MagicFat:
		ff, err := macho.NewFatFile(f)
		if err != nil {
			return Binary{}, false, nil // 0xcafebabe is also a Java class file
		}
		b := Binary{Format: "macho", GOOS: "darwin"}
		for _, a := range ff.Arches {
			b.Arches = append(b.Arches, machoArch(a.Cpu))
		}
		return b, true, nil
	case magic[0] == 'M' && magic[1] == 'Z':
		pf, err := pe.NewFile(f)
		if err != nil {
			return Binary{}, false, nil // a text file that happens to start with MZ
		}
		arch := fmt.Sprintf("pe-machine-%#x", pf.Machine)
		switch pf.Machine {
		case pe.IMAGE_FILE_MACHINE_AMD64:
			arch = "amd64"
		case pe.IMAGE_FILE_MACHINE_ARM64:
			arch = "arm64"
		case pe.IMAGE_FILE_MACHINE_I386:
			arch = "386"
		}
		return Binary{Format: "pe", GOOS: "windows", Arches: []string{arch}}, true, nil
	}
	return Binary{}, false, nil
}

func isMachO(m [4]byte) bool {
	le, be := binary.LittleEndian.Uint32(m[:]), binary.BigEndian.Uint32(m[:])
	for _, v := range []uint32{macho.Magic32, macho.Magic64} {
		if le == v || be == v {
			return true
		}
	}
	return false
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
		b, ok, err := ReadBinary(p)
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
