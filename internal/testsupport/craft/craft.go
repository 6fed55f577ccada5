// Package craft writes minimal Mach-O files byte by byte, for tests that
// need macOS binaries with chosen load commands on a Linux build host.
// Only _test.go files import it.
package craft

import "encoding/binary"

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

// Executable is a 64-bit little-endian MH_EXECUTE with the given loads.
func Executable(cpu uint32, loads ...[]byte) []byte { return file(cpu, 2, loads) }

// Library is a 64-bit little-endian MH_DYLIB with the given loads.
func Library(cpu uint32, loads ...[]byte) []byte { return file(cpu, 6, loads) }

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
