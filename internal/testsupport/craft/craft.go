// Package craft writes minimal Mach-O files byte by byte, for tests that
// need macOS binaries with chosen load commands on a Linux build host.
// Only _test.go files import it.
package craft

import (
	"crypto/sha256"
	"encoding/binary"
)

// CPU types and load command numbers (mach-o/loader.h).
const (
	CPUARM64 = 0x0100000c
	CPUAMD64 = 0x01000007

	LCLoadDylib        = 0xc
	LCIDDylib          = 0xd
	LCRpath            = 0x1c | 0x80000000
	LCVersionMinMacOSX = 0x24
	LCBuildVersion     = 0x32
	PlatformMacOS      = 1
)

// Version packs major.minor as Mach-O's xxxx.yy.zz.
func Version(major, minor uint32) uint32 { return major<<16 | minor<<8 }

// Load builds one load command: cmd, cmdsize, then (when str is set) a
// string offset word, the fixed words, and the NUL-terminated string,
// padded to 8 bytes.
func Load(cmd uint32, words []uint32, str string) []byte {
	fixed := 8 + 4*len(words)
	if str != "" {
		fixed += 4
	}
	size := (fixed + len(str) + 1 + 7) &^ 7
	b := make([]byte, size)
	binary.LittleEndian.PutUint32(b, cmd)
	binary.LittleEndian.PutUint32(b[4:], uint32(size))
	off := 8
	if str != "" {
		binary.LittleEndian.PutUint32(b[8:], uint32(fixed))
		off = 12
	}
	for _, w := range words {
		binary.LittleEndian.PutUint32(b[off:], w)
		off += 4
	}
	if str != "" {
		copy(b[fixed:], str)
	}
	return b
}

// Dylib is an LC_LOAD_DYLIB of name.
func Dylib(name string) []byte { return Load(LCLoadDylib, []uint32{2, 0x10000, 0x10000}, name) }

// ID is an LC_ID_DYLIB (a library's own install name).
func ID(name string) []byte { return Load(LCIDDylib, []uint32{2, 0x10000, 0x10000}, name) }

// Rpath is an LC_RPATH.
func Rpath(p string) []byte { return Load(LCRpath, nil, p) }

// BuildVersion is an LC_BUILD_VERSION for macOS with the given minimum.
func BuildVersion(minos uint32) []byte {
	return Load(LCBuildVersion, []uint32{PlatformMacOS, minos, minos, 0}, "")
}

// Executable is a 64-bit little-endian MH_EXECUTE with the given loads,
// ad-hoc signed (Sign) like every binary the linkers make for macOS.
func Executable(cpu uint32, loads ...[]byte) []byte { return Sign(file(cpu, 2, loads)) }

// Library is a 64-bit little-endian MH_DYLIB with the given loads, ad-hoc signed.
func Library(cpu uint32, loads ...[]byte) []byte { return Sign(file(cpu, 6, loads)) }

// UnsignedExecutable is Executable without a code signature.
func UnsignedExecutable(cpu uint32, loads ...[]byte) []byte { return file(cpu, 2, loads) }

// Sign appends an ad-hoc code signature to a thin 64-bit little-endian
// Mach-O whose load commands end the header area (as file writes them):
// an LC_CODE_SIGNATURE command, then, 16-byte aligned, a SuperBlob with one
// SHA-256 CodeDirectory over 4 KiB pages up to the signature.
func Sign(b []byte) []byte {
	le, be := binary.LittleEndian, binary.BigEndian
	out := append([]byte(nil), b...)
	cs := make([]byte, 16)
	le.PutUint32(cs, 0x1d)
	le.PutUint32(cs[4:], 16)
	out = append(out, cs...)
	le.PutUint32(out[16:], le.Uint32(out[16:])+1)
	le.PutUint32(out[20:], le.Uint32(out[20:])+16)
	for len(out)%16 != 0 {
		out = append(out, 0)
	}
	const pageShift, hashSize = 12, 32
	codeLimit := len(out)
	nSlots := (codeLimit + 1<<pageShift - 1) >> pageShift
	ident := []byte("craft\x00")
	const cdHeader = 88 // through version 0x20400's execSeg fields
	cd := make([]byte, cdHeader+len(ident)+nSlots*hashSize)
	be.PutUint32(cd[0:], 0xfade0c02)
	be.PutUint32(cd[4:], uint32(len(cd)))
	be.PutUint32(cd[8:], 0x20400)
	be.PutUint32(cd[12:], 0x2) // adhoc
	be.PutUint32(cd[16:], uint32(cdHeader+len(ident)))
	be.PutUint32(cd[20:], cdHeader)
	be.PutUint32(cd[28:], uint32(nSlots))
	be.PutUint32(cd[32:], uint32(codeLimit))
	cd[36], cd[37], cd[39] = hashSize, 2, pageShift
	copy(cd[cdHeader:], ident)
	// The command's fields lie in the first page, so they are set before hashing.
	le.PutUint32(out[len(b)+8:], uint32(codeLimit))
	le.PutUint32(out[len(b)+12:], uint32(20+len(cd)))
	for i := 0; i < nSlots; i++ {
		end := min((i+1)<<pageShift, codeLimit)
		sum := sha256.Sum256(out[i<<pageShift : end])
		copy(cd[cdHeader+len(ident)+i*hashSize:], sum[:])
	}
	sb := make([]byte, 20, 20+len(cd))
	be.PutUint32(sb[0:], 0xfade0cc0)
	be.PutUint32(sb[4:], uint32(20+len(cd)))
	be.PutUint32(sb[8:], 1)
	be.PutUint32(sb[16:], 20) // slot 0 (CodeDirectory) at offset 20
	sb = append(sb, cd...)
	return append(out, sb...)
}

func file(cpu, filetype uint32, loads [][]byte) []byte {
	var cmds []byte
	for _, l := range loads {
		cmds = append(cmds, l...)
	}
	h := make([]byte, 32)
	binary.LittleEndian.PutUint32(h[0:], 0xfeedfacf)
	binary.LittleEndian.PutUint32(h[4:], cpu)
	binary.LittleEndian.PutUint32(h[12:], filetype)
	binary.LittleEndian.PutUint32(h[16:], uint32(len(loads)))
	binary.LittleEndian.PutUint32(h[20:], uint32(len(cmds)))
	return append(h, cmds...)
}

// Fat wraps thin Mach-Os (cpu -> file) into a universal binary.
func Fat(slices map[uint32][]byte) []byte {
	var cpus []uint32
	for c := range slices {
		cpus = append(cpus, c)
	}
	// Deterministic order keeps test output stable.
	for i := range cpus {
		for j := i + 1; j < len(cpus); j++ {
			if cpus[j] < cpus[i] {
				cpus[i], cpus[j] = cpus[j], cpus[i]
			}
		}
	}
	hdr := make([]byte, 8+20*len(cpus))
	binary.BigEndian.PutUint32(hdr, 0xcafebabe)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(cpus)))
	var body []byte
	const align = 4096
	for i, c := range cpus {
		e := hdr[8+20*i:]
		binary.BigEndian.PutUint32(e, c)
		binary.BigEndian.PutUint32(e[8:], uint32(align+len(body)))
		binary.BigEndian.PutUint32(e[12:], uint32(len(slices[c])))
		binary.BigEndian.PutUint32(e[16:], 12)
		body = append(body, slices[c]...)
		for len(body)%align != 0 {
			body = append(body, 0)
		}
	}
	out := make([]byte, align)
	copy(out, hdr)
	return append(out, body...)
}
