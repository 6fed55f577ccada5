// Package extract unpacks tar, tar.gz, tar.xz and zip archives with
// mholt/archives into a target directory that nothing in the archive can
// escape: absolute paths, `..`, links pointing outside or upward, hard
// links, device and FIFO entries, and archives that expand beyond a size or
// entry limit are refused. All writes go through os.Root, so even a path
// the checks missed cannot resolve outside the target.
package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/mholt/archives"
)

// Default limits; sized for a mongod archive (~100 MB unpacked) with room.
const (
	DefaultMaxBytes   int64 = 2 << 30
	DefaultMaxEntries       = 100_000
)

// Options controls one extraction.
type Options struct {
	// Dest is the directory to fill; it is created if missing.
	Dest string
	// Members, when non-nil, selects what to extract: archive member path
	// (slash form, without a leading "./") -> destination path relative to
	// Dest. Other entries are skipped; a selected member that is missing or
	// is not a regular file is an error.
	Members map[string]string
	// MaxBytes caps the total bytes written (DefaultMaxBytes when 0).
	MaxBytes int64
	// MaxEntries caps the number of archive entries read (DefaultMaxEntries when 0).
	MaxEntries int
}

// Result lists what was written.
type Result struct {
	Files []string // destination paths relative to Dest, slash form, sorted
	Bytes int64
}

// ErrUnsafe marks an archive refused for safety; errors.Is tells it apart
// from I/O failures.
var ErrUnsafe = errors.New("unsafe archive")

// ErrFormat marks input that is not a supported archive.
var ErrFormat = errors.New("unsupported archive format (want tar, tar.gz, tar.xz or zip)")

func unsafe(name, format string, args ...any) error {
	return fmt.Errorf("%w: entry %q: %s", ErrUnsafe, name, fmt.Sprintf(format, args...))
}

// File extracts the archive at path.
func File(ctx context.Context, archivePath string, o Options) (*Result, error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", archivePath, err)
	}
	defer f.Close()
	res, err := Reader(ctx, f, o)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", archivePath, err)
	}
	return res, nil
}

// ReadSeekerAt is what zip needs of its input; *os.File and *bytes.Reader qualify.
type ReadSeekerAt interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Reader extracts an archive whose format is recognised from its first bytes.
func Reader(ctx context.Context, r ReadSeekerAt, o Options) (*Result, error) {
	format, err := sniff(r)
	if err != nil {
		return nil, err
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	members := map[string]string{}
	for src, dst := range o.Members {
		s, err := cleanMember(src)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", src, err)
		}
		d, err := cleanMember(dst)
		if err != nil {
			return nil, fmt.Errorf("destination %q for member %q: %w", dst, src, err)
		}
		members[s] = d
	}
	if err := os.MkdirAll(o.Dest, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.Dest, err)
	}
	root, err := os.OpenRoot(o.Dest)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", o.Dest, err)
	}
	defer root.Close()
	x := &extractor{opts: o, members: members, root: root, written: map[string]bool{}, found: map[string]bool{}, tops: map[string]bool{}}
	if err := format.Extract(ctx, r, x.handle); err != nil {
		return nil, err
	}
	if o.Members != nil {
		var missing []string
		for src := range members {
			if !x.found[src] {
				missing = append(missing, src)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			tops := make([]string, 0, len(x.tops))
			for t := range x.tops {
				tops = append(tops, t)
			}
			sort.Strings(tops)
			if len(tops) > 5 {
				tops = append(tops[:5], "…")
			}
			return nil, fmt.Errorf("archive lacks member(s) %s (its top-level entries: %s)", strings.Join(missing, ", "), strings.Join(tops, ", "))
		}
	}
	res := &Result{Bytes: x.bytes}
	for p, isFile := range x.written {
		if isFile {
			res.Files = append(res.Files, p)
		}
	}
	sort.Strings(res.Files)
	return res, nil
}

// Entry is one archive member as List reports it.
type Entry struct {
	Name    string // clean slash path
	Regular bool   // a regular file (not a directory or link)
}

// List returns an archive's members without writing anything, with the
// same name checks and entry limit as extraction.
func List(ctx context.Context, archivePath string) ([]Entry, error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", archivePath, err)
	}
	defer f.Close()
	format, err := sniff(f)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", archivePath, err)
	}
	var out []Entry
	err = format.Extract(ctx, f, func(_ context.Context, fi archives.FileInfo) error {
		if len(out) >= DefaultMaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrUnsafe, DefaultMaxEntries)
		}
		name, err := cleanMember(fi.NameInArchive)
		if err != nil {
			return unsafe(fi.NameInArchive, "%v", err)
		}
		if name != "." {
			out = append(out, Entry{Name: name, Regular: fi.Mode().IsRegular() && !isHardLink(fi)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", archivePath, err)
	}
	return out, nil
}

// sniff picks the format from magic bytes only: a file name is a claim, the
// content is the fact, and only these four formats are ever accepted.
func sniff(r ReadSeekerAt) (archives.Extractor, error) {
	var hdr [262]byte
	n, err := r.ReadAt(hdr[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read archive header: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind archive: %w", err)
	}
	b := hdr[:n]
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return archives.CompressedArchive{Compression: archives.Gz{}, Extraction: archives.Tar{}}, nil
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return archives.CompressedArchive{Compression: archives.Xz{}, Extraction: archives.Tar{}}, nil
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return archives.Zip{}, nil
	case len(b) >= 262 && bytes.HasPrefix(b[257:], []byte("ustar")):
		return archives.Tar{}, nil
	}
	return nil, ErrFormat
}

// cleanMember validates an archive or destination path and returns its
// clean slash form. Rejected: empty, absolute, drive-letter, backslash, NUL
// and any ".." component (checked before cleaning, so "a/../b" is refused
// rather than silently reinterpreted).
func cleanMember(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	switch {
	case n == "" || n == ".":
		return ".", nil
	case strings.ContainsRune(n, 0):
		return "", errors.New("NUL in path")
	case strings.Contains(n, `\`):
		return "", errors.New("backslash in path")
	case strings.HasPrefix(n, "/"):
		return "", errors.New("absolute path")
	case len(n) >= 2 && n[1] == ':':
		return "", errors.New("drive-letter path")
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", errors.New("'..' in path")
		}
	}
	return path.Clean(n), nil
}

type extractor struct {
	opts    Options
	members map[string]string
	root    *os.Root
	entries int
	bytes   int64
	written map[string]bool // dest path -> is a file (false: directory)
	found   map[string]bool // selected members seen
	tops    map[string]bool // first path components seen, for error messages
}

func (x *extractor) handle(ctx context.Context, f archives.FileInfo) error {
	x.entries++
	if x.entries > x.opts.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrUnsafe, x.opts.MaxEntries)
	}
	name, err := cleanMember(f.NameInArchive)
	if err != nil {
		return unsafe(f.NameInArchive, "%v", err)
	}
	if name == "." {
		return nil
	}
	x.tops[strings.SplitN(name, "/", 2)[0]] = true
	dest := name
	if x.opts.Members != nil {
		d, ok := x.members[name]
		if !ok {
			return nil
		}
		if x.found[name] {
			return unsafe(f.NameInArchive, "member appears twice")
		}
		x.found[name] = true
		if !f.Mode().IsRegular() {
			return unsafe(f.NameInArchive, "selected member is not a regular file (%s)", f.Mode().Type())
		}
		dest = d
	}
	mode := f.Mode()
	switch {
	case isHardLink(f):
		return unsafe(f.NameInArchive, "hard link to %q", f.LinkTarget)
	case mode&fs.ModeSymlink != 0:
		return x.symlink(f, dest)
	case mode.IsDir():
		if x.written[dest] {
			return nil
		}
		if err := x.root.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", dest, err)
		}
		return nil
	case mode.IsRegular():
		return x.file(f, dest)
	default:
		return unsafe(f.NameInArchive, "special file (%s)", mode.Type())
	}
}

func (x *extractor) claim(name, dest string) error {
	if _, dup := x.written[dest]; dup {
		return unsafe(name, "written twice (as %s)", dest)
	}
	if err := x.parentsAreDirs(dest); err != nil {
		return unsafe(name, "%v", err)
	}
	return nil
}

// parentsAreDirs refuses to write beneath a symbolic link, so an entry can
// never land somewhere other than its own path.
func (x *extractor) parentsAreDirs(dest string) error {
	dir := path.Dir(dest)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		st, err := x.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("parent %s is not a directory", p)
		}
	}
	return nil
}

func (x *extractor) file(f archives.FileInfo, dest string) error {
	if err := x.claim(f.NameInArchive, dest); err != nil {
		return err
	}
	if f.Size() < 0 || f.Size() > x.opts.MaxBytes-x.bytes {
		return fmt.Errorf("%w: expands beyond %d bytes", ErrUnsafe, x.opts.MaxBytes)
	}
	if d := path.Dir(dest); d != "." {
		if err := x.root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
	}
	// Executable bits are kept, everything else normalised, so output is the
	// same on every build host.
	perm := fs.FileMode(0o644)
	if f.Mode().Perm()&0o111 != 0 {
		perm = 0o755
	}
	in, err := f.Open()
	if err != nil {
		return fmt.Errorf("open entry %s: %w", f.NameInArchive, err)
	}
	defer in.Close()
	out, err := x.root.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	x.written[dest] = true
	limit := x.opts.MaxBytes - x.bytes
	n, err := io.Copy(out, io.LimitReader(in, limit+1))
	x.bytes += n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	if n > limit {
		return fmt.Errorf("%w: expands beyond %d bytes", ErrUnsafe, x.opts.MaxBytes)
	}
	return nil
}

// symlink accepts only relative targets that stay at or below the link's
// own directory (no ".." at all): then no chain of links can climb out,
// whatever the links in between point to.
func (x *extractor) symlink(f archives.FileInfo, dest string) error {
	t := f.LinkTarget
	if t == "" {
		return unsafe(f.NameInArchive, "symbolic link without a target")
	}
	ct, err := cleanMember(t)
	if err != nil {
		return unsafe(f.NameInArchive, "symbolic link to %q: %v", t, err)
	}
	if ct == "." {
		return unsafe(f.NameInArchive, "symbolic link to its own directory")
	}
	if err := x.claim(f.NameInArchive, dest); err != nil {
		return err
	}
	if d := path.Dir(dest); d != "." {
		if err := x.root.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
	}
	if err := x.root.Symlink(ct, dest); err != nil {
		return fmt.Errorf("create symbolic link %s: %w", dest, err)
	}
	x.written[dest] = false
	return nil
}

// isHardLink reads the tar header: fs.FileMode has no bit for hard links,
// so they look like regular files. (Zip has no hard links.)
func isHardLink(f archives.FileInfo) bool {
	h, ok := f.Header.(*tar.Header)
	return ok && h.Typeflag == tar.TypeLink
}
