package oci

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Ownership of every file the app layer writes. Files belong to root so the
// non-root process cannot rewrite its own code; WritableDirs belong to the
// runtime user.
const (
	RootUID = 0
	// AppUID/AppGID is the non-root user the images run as (node's uid in the
	// official node images, so the base's /etc/passwd already names it).
	AppUID = 1000
	AppGID = 1000
)

// LayerSpec describes one deterministic app layer.
type LayerSpec struct {
	// Dir is copied to Target inside the image.
	Dir string
	// Target is the absolute directory in the image, e.g. /app.
	Target string
	// WritableDirs are extra absolute directories created empty and owned by
	// AppUID:AppGID (Next's cache, the worker's workspaces).
	WritableDirs []string
	// Time is every entry's mtime (SOURCE_DATE_EPOCH).
	Time time.Time
	// MediaType of the layer (OCI or Docker gzip layer, matching the base).
	MediaType types.MediaType
	// Include, when set, picks which paths (slash, relative to Dir) go in;
	// a directory left out is skipped whole. Parents are added as needed.
	Include func(rel string) bool
}

// IsDeps says whether rel is the tree's top-level node_modules: it goes in
// its own layer, which stays the same (and is not uploaded again) when only
// the app's own code changes.
func IsDeps(rel string) bool { return rel == "node_modules" || strings.HasPrefix(rel, "node_modules/") }

// entry is one tar member before it is written.
type entry struct {
	name     string // slash path without leading "/"
	src      string // file on disk (regular files)
	link     string // symlink target
	typ      byte
	mode     int64
	uid, gid int
}

// WriteLayer writes the layer described by spec as a gzip tarball at out and
// returns it as a v1.Layer. Entries are sorted by path with fixed times,
// owners and normalized modes, so the same tree always gives the same digest.
// The tarball is compressed once here; ggcr then only reads it.
func WriteLayer(spec LayerSpec, out string) (v1.Layer, error) {
	entries, err := collect(spec)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, fmt.Errorf("write layer %s: %w", out, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	// gzip without a name or mtime in its header: deterministic bytes.
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return nil, err
	}
	tw := tar.NewWriter(zw)
	if err := writeEntries(tw, entries, spec.Time.UTC().Truncate(time.Second)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write layer from %s: %w", spec.Dir, err)
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write layer %s: %w", out, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write layer %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write layer %s: %w", out, err)
	}
	mt := spec.MediaType
	if mt == "" {
		mt = types.OCILayer
	}
	return tarball.LayerFromFile(out, tarball.WithMediaType(mt))
}

func collect(spec LayerSpec) ([]entry, error) {
	target := strings.Trim(path.Clean("/"+spec.Target), "/")
	if target == "" {
		return nil, fmt.Errorf("layer target %q must be a directory below /", spec.Target)
	}
	byName := map[string]entry{}
	addParents := func(p string, uid int) {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byName[d]; !ok {
				byName[d] = entry{name: d, typ: tar.TypeDir, mode: 0o755, uid: uid, gid: uid}
			}
		}
	}
	byName[target] = entry{name: target, typ: tar.TypeDir, mode: 0o755}
	addParents(target, RootUID)
	root, err := filepath.Abs(spec.Dir)
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if spec.Include != nil && !spec.Include(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := target + "/" + filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{name: name}
		switch {
		case d.IsDir():
			e.typ, e.mode = tar.TypeDir, 0o755
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.typ, e.mode, e.link = tar.TypeSymlink, 0o777, link
		case info.Mode().IsRegular():
			e.typ, e.src, e.mode = tar.TypeReg, p, 0o644
			if info.Mode()&0o111 != 0 {
				e.mode = 0o755
			}
		default:
			return fmt.Errorf("%s: %s files cannot go into an image layer; remove it from the build output", p, info.Mode().Type())
		}
		byName[name] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", spec.Dir, err)
	}
	for _, w := range spec.WritableDirs {
		name := strings.Trim(path.Clean("/"+w), "/")
		if name == "" {
			continue
		}
		addParents(name, RootUID)
		byName[name] = entry{name: name, typ: tar.TypeDir, mode: 0o755, uid: AppUID, gid: AppGID}
	}
	entries := make([]entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

func writeEntries(tw *tar.Writer, entries []entry, mtime time.Time) error {
	for _, e := range entries {
		h := &tar.Header{
			Typeflag: e.typ,
			Name:     e.name,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  mtime,
		}
		if e.typ == tar.TypeDir {
			h.Name += "/"
		}
		if e.typ != tar.TypeReg {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, h, e.src); err != nil {
			return err
		}
	}
	return nil
}

// copyFile writes h, sized from src (links followed), and then src's bytes.
func copyFile(tw *tar.Writer, h *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, h.Size); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
