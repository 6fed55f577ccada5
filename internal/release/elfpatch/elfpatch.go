// Package elfpatch rewrites an ELF file's interpreter (PT_INTERP) and
// library search paths (DT_RUNPATH, DT_RPATH) in place, without growing
// anything: the new string is written over the old one and padded with
// NULs. Homebrew's Linux bottles carry long placeholders there
// (@@HOMEBREW_PREFIX@@/lib/ld.so, @@HOMEBREW_PREFIX@@/opt/...), which
// Homebrew itself rewrites when it pours a bottle; the release build does
// the same so the payload's binaries start on a plain glibc system. A new
// string that does not fit in the old one's bytes is refused, never
// squeezed in elsewhere.
package elfpatch

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Fields a rewrite can touch.
const (
	FieldInterp  = "PT_INTERP"
	FieldRunpath = "DT_RUNPATH"
	FieldRpath   = "DT_RPATH"
)

// Change is one rewritten string.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Rewrite asks decide, for the interpreter and each DT_RUNPATH/DT_RPATH
// value, what it should become (ok=false or the same string: unchanged),
// writes every change in place and returns them. Nothing is written when
// any change does not fit or would corrupt a string shared with another
// entry; the error names the file, field and sizes.
func Rewrite(path string, decide func(field, old string) (string, bool)) ([]Change, error) {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	p, err := parse(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	type write struct {
		off int64
		b   []byte
	}
	var writes []write
	var changes []Change
	if p.interp != "" {
		if next, ok := decide(FieldInterp, p.interp); ok && next != p.interp {
			// The kernel and ld.so read the interpreter as a C string; the
			// segment keeps its size and ends in NUL padding.
			if len(next)+1 > int(p.interpSize) {
				return nil, fmt.Errorf("%s: new %s %q (%d bytes and a NUL) does not fit in place of %q (%d bytes); use a shorter path",
					path, FieldInterp, next, len(next), p.interp, p.interpSize)
			}
			if bytes.IndexByte([]byte(next), 0) >= 0 {
				return nil, fmt.Errorf("%s: new %s contains a NUL byte", path, FieldInterp)
			}
			writes = append(writes, write{p.interpOff, padded(next, int(p.interpSize))})
			changes = append(changes, Change{FieldInterp, p.interp, next})
		}
	}
	for _, s := range p.paths {
		field := FieldRpath
		if s.tag == elf.DT_RUNPATH {
			field = FieldRunpath
		}
		next, ok := decide(field, s.value)
		if !ok || next == s.value {
			continue
		}
		if len(next) > len(s.value) {
			return nil, fmt.Errorf("%s: new %s %q (%d bytes) does not fit in place of %q (%d bytes); in-place rewriting cannot grow .dynstr",
				path, field, next, len(next), s.value, len(s.value))
		}
		if bytes.IndexByte([]byte(next), 0) >= 0 {
			return nil, fmt.Errorf("%s: new %s contains a NUL byte", path, field)
		}
		// A linker may share a string's tail with another name (suffix
		// merging); overwriting it would change that name too.
		for _, r := range p.refs {
			if r.off >= s.strOff && r.off < s.strOff+uint64(len(s.value)) && !r.searchPath {
				return nil, fmt.Errorf("%s: %s %q shares its bytes in .dynstr with %s; cannot rewrite it in place", path, field, s.value, r.what)
			}
		}
		writes = append(writes, write{s.fileOff, padded(next, len(s.value)+1)})
		changes = append(changes, Change{field, s.value, next})
	}
	for _, w := range writes {
		if _, err := fh.WriteAt(w.b, w.off); err != nil {
			return nil, fmt.Errorf("%s: write: %w", path, err)
		}
	}
	if err := fh.Sync(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return changes, nil
}

func padded(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

// searchPath is one DT_RUNPATH/DT_RPATH entry.
type searchPath struct {
	tag     elf.DynTag
	value   string
	strOff  uint64 // offset in the dynamic string table
	fileOff int64  // where its bytes are in the file
}

// strRef is a reference into the dynamic string table.
type strRef struct {
	off        uint64
	what       string
	searchPath bool
}

type parsed struct {
	interp     string
	interpOff  int64
	interpSize uint64
	paths      []searchPath
	refs       []strRef
}

func parse(r io.ReaderAt) (*parsed, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("not a readable ELF file: %w", err)
	}
	p := &parsed{}
	dyn, err := p.readSegments(f)
	if err != nil {
		return nil, err
	}
	if dyn == nil {
		return p, nil // static: nothing more to rewrite
	}
	raw := make([]byte, dyn.Filesz)
	if _, err := dyn.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("read PT_DYNAMIC: %w", err)
	}
	entries := dynEntries(f, raw)
	strtab, strOff, strs, err := dynStrings(f, r, entries)
	if err != nil {
		return nil, err
	}
	if err := p.readDynamic(entries, strOff, strs); err != nil {
		return nil, err
	}
	if len(p.paths) == 0 {
		return p, nil
	}
	if err := p.readSectionRefs(f, strtab, entries); err != nil {
		return nil, err
	}
	return p, nil
}

// readSegments records the interpreter and returns PT_DYNAMIC, nil in a
// static file.
func (p *parsed) readSegments(f *elf.File) (*elf.Prog, error) {
	var dyn *elf.Prog
	for _, prog := range f.Progs {
		switch prog.Type {
		case elf.PT_INTERP:
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("read PT_INTERP: %w", err)
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			p.interp, p.interpOff, p.interpSize = string(b), int64(prog.Off), prog.Filesz
		case elf.PT_DYNAMIC:
			dyn = prog
		}
	}
	return dyn, nil
}

// dynStrings reads the dynamic string table: its address, its file offset
// and its bytes.
func dynStrings(f *elf.File, r io.ReaderAt, entries []dynEntry) (strtab, strOff uint64, strs []byte, err error) {
	var strsz uint64
	for _, e := range entries {
		switch e.tag {
		case elf.DT_STRTAB:
			strtab = e.val
		case elf.DT_STRSZ:
			strsz = e.val
		}
	}
	if strtab == 0 || strsz == 0 {
		return 0, 0, nil, errors.New("dynamic section has no DT_STRTAB/DT_STRSZ")
	}
	strOff, ok := fileOffset(f, strtab, strsz)
	if !ok {
		return 0, 0, nil, fmt.Errorf("DT_STRTAB %#x is not inside a loaded segment", strtab)
	}
	strs = make([]byte, strsz)
	if _, err := r.ReadAt(strs, int64(strOff)); err != nil {
		return 0, 0, nil, fmt.Errorf("read dynamic string table: %w", err)
	}
	return strtab, strOff, strs, nil
}

// readDynamic records the search paths and every other dynamic entry that
// points into the string table.
func (p *parsed) readDynamic(entries []dynEntry, strOff uint64, strs []byte) error {
	strsz := uint64(len(strs))
	for _, e := range entries {
		switch e.tag {
		case elf.DT_RUNPATH, elf.DT_RPATH:
			if e.val >= strsz {
				return fmt.Errorf("%s offset %d outside the string table", e.tag, e.val)
			}
			s := strs[e.val:]
			end := bytes.IndexByte(s, 0)
			if end < 0 {
				return fmt.Errorf("%s string is not NUL-terminated", e.tag)
			}
			p.paths = append(p.paths, searchPath{tag: e.tag, value: string(s[:end]), strOff: e.val, fileOff: int64(strOff + e.val)})
			p.refs = append(p.refs, strRef{off: e.val, what: e.tag.String(), searchPath: true})
		case elf.DT_NEEDED, elf.DT_SONAME, elf.DT_AUXILIARY, elf.DT_FILTER, elf.DT_CONFIG, elf.DT_DEPAUDIT, elf.DT_AUDIT:
			p.refs = append(p.refs, strRef{off: e.val, what: e.tag.String()})
		}
	}
	return nil
}

// readSectionRefs records the other users of .dynstr: symbol names and
// version records. They are found through the section headers; without
// them sharing cannot be ruled out.
func (p *parsed) readSectionRefs(f *elf.File, strtab uint64, entries []dynEntry) error {
	found := false
	for _, sec := range f.Sections {
		if sec.Link == 0 || int(sec.Link) >= len(f.Sections) || f.Sections[sec.Link].Addr != strtab {
			continue
		}
		switch sec.Type {
		case elf.SHT_DYNSYM:
			found = true
			refs, err := symRefs(f, sec)
			if err != nil {
				return err
			}
			p.refs = append(p.refs, refs...)
		case elf.SHT_GNU_VERNEED, elf.SHT_GNU_VERDEF:
			refs, err := versionRefs(f, sec)
			if err != nil {
				return err
			}
			p.refs = append(p.refs, refs...)
		}
	}
	if !found && hasTag(entries, elf.DT_SYMTAB) {
		return errors.New("no section headers for the dynamic symbol table: cannot check that the search path's bytes are not shared")
	}
	return nil
}

func hasTag(es []dynEntry, t elf.DynTag) bool {
	return slices.ContainsFunc(es, func(e dynEntry) bool { return e.tag == t })
}

type dynEntry struct {
	tag elf.DynTag
	val uint64
}

func dynEntries(f *elf.File, raw []byte) []dynEntry {
	var out []dynEntry
	bo := f.ByteOrder
	size := 16
	if f.Class == elf.ELFCLASS32 {
		size = 8
	}
	for i := 0; i+size <= len(raw); i += size {
		var e dynEntry
		if size == 16 {
			e = dynEntry{elf.DynTag(int64(bo.Uint64(raw[i:]))), bo.Uint64(raw[i+8:])}
		} else {
			e = dynEntry{elf.DynTag(int32(bo.Uint32(raw[i:]))), uint64(bo.Uint32(raw[i+4:]))}
		}
		if e.tag == elf.DT_NULL {
			break
		}
		out = append(out, e)
	}
	return out
}

// fileOffset maps a virtual address range to file bytes through PT_LOAD.
func fileOffset(f *elf.File, vaddr, size uint64) (uint64, bool) {
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_LOAD && vaddr >= prog.Vaddr && vaddr+size <= prog.Vaddr+prog.Filesz {
			return prog.Off + (vaddr - prog.Vaddr), true
		}
	}
	return 0, false
}

func symRefs(f *elf.File, sec *elf.Section) ([]strRef, error) {
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sec.Name, err)
	}
	size := 24
	if f.Class == elf.ELFCLASS32 {
		size = 16
	}
	var out []strRef
	for i := 0; i+size <= len(data); i += size {
		if off := uint64(f.ByteOrder.Uint32(data[i:])); off != 0 {
			out = append(out, strRef{off: off, what: "a dynamic symbol name"})
		}
	}
	return out, nil
}

// versionRefs walks GNU version needs (Elf_Verneed/Elf_Vernaux) or
// definitions (Elf_Verdef/Elf_Verdaux); both layouts are the same for
// 32- and 64-bit files.
func versionRefs(f *elf.File, sec *elf.Section) ([]strRef, error) {
	d, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sec.Name, err)
	}
	bo := f.ByteOrder
	u16 := func(o uint64) uint16 { return bo.Uint16(d[o:]) }
	u32 := func(o uint64) uint32 { return bo.Uint32(d[o:]) }
	in := func(o, n uint64) bool { return o+n <= uint64(len(d)) }
	var out []strRef
	need := sec.Type == elf.SHT_GNU_VERNEED
	var off uint64
	for n := 0; n < 1<<16 && in(off, 16); n++ {
		var cnt uint16
		var aux, next uint64
		if need {
			cnt = u16(off + 2)
			out = append(out, strRef{off: uint64(u32(off + 4)), what: "a version need's file name"})
			aux, next = uint64(u32(off+8)), uint64(u32(off+12))
		} else {
			if !in(off, 20) {
				break
			}
			cnt = u16(off + 6)
			aux, next = uint64(u32(off+12)), uint64(u32(off+16))
		}
		a := off + aux
		for j := 0; j < int(cnt); j++ {
			if need {
				if !in(a, 16) {
					break
				}
				out = append(out, strRef{off: uint64(u32(a + 8)), what: "a version name"})
				if u32(a+12) == 0 {
					break
				}
				a += uint64(u32(a + 12))
			} else {
				if !in(a, 8) {
					break
				}
				out = append(out, strRef{off: uint64(u32(a)), what: "a version name"})
				if u32(a+4) == 0 {
					break
				}
				a += uint64(u32(a + 4))
			}
		}
		if next == 0 {
			break
		}
		off += next
	}
	return out, nil
}
