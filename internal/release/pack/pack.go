// Package pack writes npm package tarballs byte-reproducibly: the same tree
// gives the same bytes on any machine at any time, and unlike `npm pack` it
// keeps every node_modules directory (the web server needs
// dist/web/node_modules), so `npm publish <tarball>` ships exactly what was built.
package pack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/mholt/archives"

	"github.com/second-inc/second-release/internal/release/secretscan"
)

// Prefix is the directory every entry of an npm tarball lives under.
const Prefix = "package/"

// CompressionLevel is fixed so the compressed bytes never depend on a
// library default; 6 matches `gzip`'s default.
const CompressionLevel = 6

// Entry is one file to be packed, as the tarball will record it.
type Entry struct {
	Rel  string      // slash path relative to the package root
	Mode fs.FileMode // normalized: 0644 or 0755
	Size int64
	Path string // on-disk path
}

// Entries walks srcDir and returns its regular files sorted by path with
// normalized modes. Symbolic links, devices and the like are refused (npm
// drops links on install); so are .gitignore/.npmignore files (npm renames
// .gitignore on install, which would break the payload's manifest check) and
// anything secretscan flags.
func Entries(srcDir string) ([]Entry, error) {
	var entries []Entry
	var bad []string
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == srcDir {
			return nil
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			bad = append(bad, rel+" (symbolic link: npm drops links; copy the target instead)")
			return nil
		case !t.IsRegular():
			bad = append(bad, rel+" (not a regular file)")
			return nil
		}
		if b := path.Base(rel); b == ".gitignore" || b == ".npmignore" {
			bad = append(bad, rel+" (npm renames .gitignore to .npmignore on install; drop it from the package)")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		entries = append(entries, Entry{Rel: rel, Mode: NormalMode(info.Mode()), Size: info.Size(), Path: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list files of %s: %w", srcDir, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("cannot pack %s:\n  %s", srcDir, strings.Join(bad, "\n  "))
	}
	rels := make([]string, len(entries))
	for i, e := range entries {
		rels[i] = e.Rel
	}
	if err := secretscan.Check(srcDir, rels); err != nil {
		return nil, err
	}
	// Sort by the byte order of the slash path so the order never depends
	// on the file system's directory order.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Rel < entries[j].Rel })
	return entries, nil
}

// NormalMode maps a file mode to 0755 if anyone may execute it, else 0644.
func NormalMode(m fs.FileMode) fs.FileMode {
	if m.Perm()&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// Tarball writes srcDir as an npm tarball (entries under package/) to
// outPath. Every entry gets mtime, uid/gid 0, empty owner names and a
// normalized mode; gzip runs at a fixed level with an empty header, so the
// output depends only on the files' paths, contents and exec bits.
// The file appears at outPath only when complete.
func Tarball(ctx context.Context, srcDir, outPath string, mtime time.Time) error {
	entries, err := Entries(srcDir)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("pack %s: no files to pack", srcDir)
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return fmt.Errorf("pack %s: %w", srcDir, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".*")
	if err != nil {
		return fmt.Errorf("pack %s: %w", srcDir, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := Write(ctx, tmp, entries, mtime); err != nil {
		tmp.Close()
		return fmt.Errorf("pack %s into %s: %w", srcDir, outPath, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("pack %s: %w", srcDir, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pack %s into %s: %w", srcDir, outPath, err)
	}
	if err := os.Rename(tmp.Name(), outPath); err != nil {
		return fmt.Errorf("pack %s: %w", srcDir, err)
	}
	return nil
}

// Write streams entries as a gzipped npm tarball to w.
//
// It goes through github.com/mholt/archives (Tar inside Gz), which gives the
// control determinism needs: the tar header comes from tar.FileInfoHeader
// of our own fs.FileInfo, so ModTime and Mode are ours and a nil Sys()
// leaves uid/gid 0 and uname/gname empty; Gz (single-threaded, fixed level)
// would write the gzip header, but with a zero ModTime klauspost's gzip
// (v1.19) stores uint32 of a negative Unix time, a bogus fixed date in
// 2042, so fixedGzip sets mtime 0 (no name, no comment). One gap: archives defers
// the tar and gzip Close calls and drops their errors, so w is wrapped in a
// writer that remembers the first write error and Write reports it.
func Write(ctx context.Context, w io.Writer, entries []Entry, mtime time.Time) error {
	return WriteUnder(ctx, w, entries, Prefix, mtime)
}

// WriteUnder is Write with entries under prefix instead of package/ ("" for
// none), for other gzipped tarballs that must be just as reproducible.
func WriteUnder(ctx context.Context, w io.Writer, entries []Entry, prefix string, mtime time.Time) error {
	// Whole seconds keep every header in USTAR/PAX without sub-second
	// records that would differ between file systems.
	mtime = mtime.UTC().Truncate(time.Second)
	ew := &errWriter{w: w}
	bw := bufio.NewWriterSize(ew, 1<<20)
	files := make([]archives.FileInfo, len(entries))
	for i, e := range entries {
		e := e
		files[i] = archives.FileInfo{
			FileInfo:      fileInfo{name: path.Base(e.Rel), size: e.Size, mode: e.Mode, mtime: mtime},
			NameInArchive: prefix + e.Rel,
			Open: func() (fs.File, error) {
				f, err := os.Open(e.Path)
				if err != nil {
					return nil, err
				}
				return &sizeChecked{f: f, rel: e.Rel, want: e.Size}, nil
			},
		}
	}
	format := archives.CompressedArchive{
		Compression: fixedGzip{archives.Gz{CompressionLevel: CompressionLevel}},
		Archival:    archives.Tar{},
	}
	if err := format.Archive(ctx, bw, files); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return ew.err
}

// fixedGzip is archives.Gz with a header that carries no mtime (0), no
// name and no comment; single-threaded, so the deflate stream is fixed too.
type fixedGzip struct{ archives.Gz }

func (g fixedGzip) OpenWriter(w io.Writer) (io.WriteCloser, error) {
	zw, err := gzip.NewWriterLevel(w, g.CompressionLevel)
	if err != nil {
		return nil, err
	}
	zw.ModTime = time.Unix(0, 0)
	return zw, nil
}

// fileInfo is the fs.FileInfo the tar header is made from.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return f.mtime }
func (f fileInfo) IsDir() bool        { return false }
func (f fileInfo) Sys() any           { return nil } // nil: no uid/gid/owner names from the host

// sizeChecked fails clearly when a file shrank between listing and
// packing (archives' io.CopyN would otherwise swallow the io.EOF and leave
// the tar writer with a vaguer "missed writing" error).
// It wraps rather than embeds *os.File so io.Copy cannot bypass Read via
// (*os.File).WriteTo.
type sizeChecked struct {
	f    *os.File
	rel  string
	want int64
	n    int64
}

func (s *sizeChecked) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	s.n += int64(n)
	if s.n > s.want || (errors.Is(err, io.EOF) && s.n != s.want) {
		return n, fmt.Errorf("%s changed size while packing (%d bytes listed)", s.rel, s.want)
	}
	return n, err
}

func (s *sizeChecked) Stat() (fs.FileInfo, error) { return s.f.Stat() }
func (s *sizeChecked) Close() error               { return s.f.Close() }

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}
