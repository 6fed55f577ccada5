// Package machosig verifies a Mach-O file's embedded code signature against
// the file's own bytes, the way the kernel and dyld do on a Mac before they
// map a page: it parses LC_CODE_SIGNATURE's SuperBlob, and for every
// CodeDirectory recomputes each code page hash (SHA-1, SHA-256, truncated
// SHA-256 or SHA-384) up to codeLimit and the hashes of the requirements
// and entitlements blobs. A file changed after signing (a patched load
// command, a flipped byte) no longer matches and would be killed on launch
// on Apple silicon, so the release build refuses it. It does not check who
// signed (ad hoc or a certificate): that is the notarization step's job.
package machosig

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"debug/macho"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Code signing constants (from the kernel's cs_blobs.h).
const (
	lcCodeSignature = 0x1d

	magicEmbeddedSignature = 0xfade0cc0
	magicCodeDirectory     = 0xfade0c02

	slotCodeDirectory = 0
	slotRequirements  = 2
	slotEntitlements  = 5
	slotDEREntitle    = 7
	slotAlternateCD   = 0x1000
	slotAlternateLast = 0x1004

	hashSHA1          = 1
	hashSHA256        = 2
	hashSHA256Trunc   = 3
	hashSHA384        = 4
	cdVersionCodeLim  = 0x20300 // adds codeLimit64
	cdHeaderMinLength = 44
	flagAdhoc         = 0x2
)

// Info describes a verified signature (Signed false: the file has none).
type Info struct {
	Signed      bool
	Identifier  string
	Adhoc       bool
	HashTypes   []string // one per CodeDirectory, e.g. "sha256"
	PageSize    int      // bytes per code page (0: one page up to codeLimit)
	CodeLimit   uint64
	CodeSlots   int
	SignatureAt uint64 // file offset of the SuperBlob
}

// Error lists every way a signature fails to match its file.
type Error struct{ Problems []string }

func (e *Error) Error() string { return strings.Join(e.Problems, "; ") }

// Verify checks the signature of one thin Mach-O image of size bytes read
// through r (offsets relative to the image's first byte). An unsigned
// image returns Info{Signed: false} and no error; a malformed or
// mismatching signature returns an *Error.
func Verify(r io.ReaderAt, size int64) (Info, error) {
	f, err := macho.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return Info{}, fmt.Errorf("not a readable Mach-O image: %w", err)
	}
	var dataoff, datasize uint32
	found := false
	for _, l := range f.Loads {
		raw := l.Raw()
		if len(raw) >= 16 && f.ByteOrder.Uint32(raw) == lcCodeSignature {
			dataoff, datasize = f.ByteOrder.Uint32(raw[8:]), f.ByteOrder.Uint32(raw[12:])
			found = true
		}
	}
	if !found {
		return Info{}, nil
	}
	bad := &Error{}
	fail := func(format string, args ...any) (Info, error) {
		bad.Problems = append(bad.Problems, fmt.Sprintf(format, args...))
		return Info{Signed: true}, bad
	}
	if uint64(dataoff)+uint64(datasize) > uint64(size) || datasize < 12 {
		return fail("LC_CODE_SIGNATURE points at bytes %d-%d, outside the %d-byte image", dataoff, uint64(dataoff)+uint64(datasize), size)
	}
	sig := make([]byte, datasize)
	if _, err := r.ReadAt(sig, int64(dataoff)); err != nil {
		return Info{}, fmt.Errorf("read code signature: %w", err)
	}
	be := binary.BigEndian
	if be.Uint32(sig) != magicEmbeddedSignature {
		return fail("code signature does not start with an embedded-signature SuperBlob (magic %#x)", be.Uint32(sig))
	}
	count := be.Uint32(sig[8:])
	if uint64(count)*8+12 > uint64(len(sig)) {
		return fail("code signature SuperBlob claims %d blobs, more than fit", count)
	}
	blobs := map[uint32][]byte{}
	var cds [][]byte
	for i := uint32(0); i < count; i++ {
		typ, off := be.Uint32(sig[12+8*i:]), be.Uint32(sig[16+8*i:])
		if uint64(off)+8 > uint64(len(sig)) {
			return fail("blob %d of the code signature lies outside it", i)
		}
		n := be.Uint32(sig[off+4:])
		if n < 8 || uint64(off)+uint64(n) > uint64(len(sig)) {
			return fail("blob %d of the code signature has a bad length %d", i, n)
		}
		blob := sig[off : off+n]
		blobs[typ] = blob
		if typ == slotCodeDirectory || (typ >= slotAlternateCD && typ <= slotAlternateLast) {
			if be.Uint32(blob) != magicCodeDirectory {
				return fail("blob %d (slot %#x) is not a CodeDirectory", i, typ)
			}
			cds = append(cds, blob)
		}
	}
	if len(cds) == 0 {
		return fail("code signature holds no CodeDirectory")
	}
	info := Info{Signed: true, SignatureAt: uint64(dataoff)}
	for _, cd := range cds {
		if err := verifyCD(r, size, uint64(dataoff), cd, blobs, &info, bad); err != nil {
			return Info{}, err
		}
	}
	if len(bad.Problems) > 0 {
		return info, bad
	}
	return info, nil
}

func verifyCD(r io.ReaderAt, size int64, sigAt uint64, cd []byte, blobs map[uint32][]byte, info *Info, bad *Error) error {
	problem := func(format string, args ...any) {
		bad.Problems = append(bad.Problems, fmt.Sprintf(format, args...))
	}
	c := decodeCD(cd, problem)
	if c == nil {
		return nil
	}
	c.describe(info)
	if !c.checkLayout(size, sigAt, problem) {
		return nil
	}
	if err := c.checkPages(r, problem); err != nil {
		return err
	}
	c.checkSpecialSlots(blobs, problem)
	return nil
}

// codeDir is a CodeDirectory with its header decoded.
type codeDir struct {
	raw         []byte
	flags       uint32
	hashOffset  uint32
	identOffset uint32
	nSpecial    uint32
	nCode       uint32
	codeLimit   uint64
	hashSize    int
	pageSize    uint64 // 0: one page up to codeLimit
	newHash     func() hash.Hash
	name        string // the hash's name
}

// decodeCD reads a CodeDirectory's header; nil, with the problem
// reported, when it is too short or names a hash or page size it cannot
// be checked with.
func decodeCD(cd []byte, problem func(string, ...any)) *codeDir {
	be := binary.BigEndian
	if len(cd) < cdHeaderMinLength {
		problem("CodeDirectory is %d bytes, shorter than its header", len(cd))
		return nil
	}
	c := &codeDir{
		raw:         cd,
		flags:       be.Uint32(cd[12:]),
		hashOffset:  be.Uint32(cd[16:]),
		identOffset: be.Uint32(cd[20:]),
		nSpecial:    be.Uint32(cd[24:]),
		nCode:       be.Uint32(cd[28:]),
		codeLimit:   uint64(be.Uint32(cd[32:])),
		hashSize:    int(cd[36]),
	}
	version := be.Uint32(cd[8:])
	hashType := cd[37]
	pageShift := cd[39]
	if version >= cdVersionCodeLim && len(cd) >= 64 {
		if cl64 := be.Uint64(cd[56:]); cl64 != 0 {
			c.codeLimit = cl64
		}
	}
	newHash, name, want := hasher(hashType)
	if newHash == nil {
		problem("CodeDirectory uses unknown hash type %d", hashType)
		return nil
	}
	if c.hashSize != want {
		problem("CodeDirectory %s hashes are %d bytes, want %d", name, c.hashSize, want)
		return nil
	}
	if pageShift > 30 {
		problem("CodeDirectory page size 2^%d is out of range", pageShift)
		return nil
	}
	if pageShift > 0 {
		c.pageSize = 1 << pageShift
	}
	c.newHash, c.name = newHash, name
	return c
}

// describe adds what the CodeDirectory says about the signature to info.
func (c *codeDir) describe(info *Info) {
	if c.identOffset < uint32(len(c.raw)) {
		id := c.raw[c.identOffset:]
		if i := bytes.IndexByte(id, 0); i >= 0 {
			info.Identifier = string(id[:i])
		}
	}
	info.Adhoc = c.flags&flagAdhoc != 0
	info.HashTypes = append(info.HashTypes, c.name)
	info.PageSize, info.CodeLimit, info.CodeSlots = int(c.pageSize), c.codeLimit, int(c.nCode)
}

// checkLayout reports hash slots outside the CodeDirectory, a codeLimit
// that does not end at the signature, and a slot count that does not
// cover codeLimit; false when the pages cannot be checked.
func (c *codeDir) checkLayout(size int64, sigAt uint64, problem func(string, ...any)) bool {
	hashSize := uint64(c.hashSize)
	if uint64(c.hashOffset) < uint64(c.nSpecial)*hashSize || uint64(c.hashOffset)+uint64(c.nCode)*hashSize > uint64(len(c.raw)) {
		problem("CodeDirectory hash slots (%d special, %d code at offset %d) lie outside it", c.nSpecial, c.nCode, c.hashOffset)
		return false
	}
	switch {
	case c.codeLimit > uint64(size):
		problem("codeLimit %d is past the end of the %d-byte image", c.codeLimit, size)
		return false
	case c.codeLimit != sigAt:
		// codesign and the linkers hash everything up to the signature;
		// anything else leaves bytes unhashed or hashes the signature.
		problem("codeLimit %d does not end where the signature starts (%d)", c.codeLimit, sigAt)
	}
	wantSlots := uint64(1)
	if c.pageSize > 0 {
		wantSlots = (c.codeLimit + c.pageSize - 1) / c.pageSize
	}
	if uint64(c.nCode) != wantSlots {
		problem("CodeDirectory has %d code slots, but codeLimit %d in %d-byte pages needs %d", c.nCode, c.codeLimit, c.pageSize, wantSlots)
		return false
	}
	return true
}

// checkPages hashes the code pages, streamed so a 150 MB mongod is not
// held in memory, and reports those that do not match their slots.
func (c *codeDir) checkPages(r io.ReaderAt, problem func(string, ...any)) error {
	step := c.pageSize
	if step == 0 {
		step = c.codeLimit
	}
	hashSize := uint64(c.hashSize)
	buf := make([]byte, step)
	var mismatched []string
	h := c.newHash()
	for i := uint64(0); i < uint64(c.nCode); i++ {
		start := i * step
		end := min(start+step, c.codeLimit)
		page := buf[:end-start]
		if _, err := r.ReadAt(page, int64(start)); err != nil {
			return fmt.Errorf("read code page %d: %w", i, err)
		}
		h.Reset()
		h.Write(page)
		sum := h.Sum(nil)[:hashSize]
		slot := c.raw[uint64(c.hashOffset)+i*hashSize:][:hashSize]
		if !bytes.Equal(sum, slot) {
			mismatched = append(mismatched, fmt.Sprintf("%d (bytes %d-%d)", i, start, end))
		}
	}
	if len(mismatched) > 0 {
		shown := mismatched
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("… %d more", len(mismatched)-5))
		}
		problem("%s code page hash mismatch in %d of %d page(s): %s; the file changed after it was signed",
			c.name, len(mismatched), c.nCode, strings.Join(shown, ", "))
	}
	return nil
}

// checkSpecialSlots checks the special slots whose blobs travel in the
// signature itself.
func (c *codeDir) checkSpecialSlots(blobs map[uint32][]byte, problem func(string, ...any)) {
	h := c.newHash()
	for _, slot := range []uint32{slotRequirements, slotEntitlements, slotDEREntitle} {
		if slot > c.nSpecial {
			continue
		}
		wantHash := c.raw[c.hashOffset-slot*uint32(c.hashSize):][:c.hashSize]
		blob, ok := blobs[slot]
		if !ok {
			if !allZero(wantHash) {
				problem("CodeDirectory hashes special slot %d, but the signature lacks that blob", slot)
			}
			continue
		}
		h.Reset()
		h.Write(blob)
		if !bytes.Equal(h.Sum(nil)[:c.hashSize], wantHash) {
			problem("%s hash of special slot %d (%s) does not match its blob", c.name, slot, slotName(slot))
		}
	}
}

func hasher(t uint8) (func() hash.Hash, string, int) {
	switch t {
	case hashSHA1:
		return sha1.New, "sha1", 20
	case hashSHA256:
		return sha256.New, "sha256", 32
	case hashSHA256Trunc:
		return sha256.New, "sha256-truncated", 20
	case hashSHA384:
		return sha512.New384, "sha384", 48
	}
	return nil, "", 0
}

func slotName(s uint32) string {
	switch s {
	case slotRequirements:
		return "requirements"
	case slotEntitlements:
		return "entitlements"
	case slotDEREntitle:
		return "DER entitlements"
	}
	return "?"
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Slice is one architecture's result for a file.
type Slice struct {
	Cpu  macho.Cpu
	Info Info
	Err  error
}

// VerifyFile verifies a thin or universal Mach-O file, each slice on its
// own; the error is for files that cannot be read or parsed at all.
func VerifyFile(path string) ([]Slice, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if ff, err := macho.NewFatFile(fh); err == nil {
		var out []Slice
		for _, a := range ff.Arches {
			info, err := Verify(io.NewSectionReader(fh, int64(a.Offset), int64(a.Size)), int64(a.Size))
			out = append(out, Slice{Cpu: a.Cpu, Info: info, Err: err})
		}
		return out, nil
	} else if !errors.Is(err, macho.ErrNotFat) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := macho.NewFile(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info, err := Verify(fh, st.Size())
	return []Slice{{Cpu: f.Cpu, Info: info, Err: err}}, nil
}
