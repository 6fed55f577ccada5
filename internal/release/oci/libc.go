package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/platform"
)

// baseLibcs remembers each base's C library by its digest: web and worker
// often share a base, and reading a base means decompressing its layers.
var baseLibcs sync.Map

// BaseLibc tells which C library a base image's dynamic loader is: musl
// (/lib/ld-musl-<arch>.so.1, Alpine) or glibc (ld-linux-*.so.*, Debian and
// most others), from the files of its layers. "" means neither is there (a
// base with no dynamic loader, such as the dev base without node).
func BaseLibc(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	if v, ok := baseLibcs.Load(d); ok {
		return v.(string), nil
	}
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("read base layers: %w", err)
	}
	var musl, glibc string
	for _, l := range layers {
		if err := loaderFiles(l, &musl, &glibc); err != nil {
			return "", err
		}
	}
	libc := ""
	switch {
	case musl != "" && glibc != "":
		return "", fmt.Errorf("base has both musl's loader /%s and glibc's /%s: cannot tell which C library native node modules need", musl, glibc)
	case musl != "":
		libc = nodemods.Musl
	case glibc != "":
		libc = nodemods.Glibc
	}
	baseLibcs.Store(d, libc)
	return libc, nil
}

func loaderFiles(l v1.Layer, musl, glibc *string) error {
	// Compressed, not Uncompressed: through the base layer cache the latter
	// would store an uncompressed copy of every base layer as well.
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("read base layer: %w", err)
	}
	defer rc.Close()
	r, err := decompress(rc)
	if err != nil {
		return fmt.Errorf("read base layer: %w", err)
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read base layer: %w", err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		base := path.Base(name)
		if strings.HasPrefix(base, ".wh.") || h.Typeflag == tar.TypeDir {
			continue
		}
		// Loaders live in /lib, /lib64 or a multiarch dir under /lib or /usr/lib.
		if dir := path.Dir(name); !(dir == "lib" || dir == "lib64" || strings.HasPrefix(dir, "lib/") || strings.HasPrefix(dir, "usr/lib")) {
			continue
		}
		switch {
		case strings.HasPrefix(base, "ld-musl-") && *musl == "":
			*musl = name
		case strings.HasPrefix(base, "ld-linux") && *glibc == "":
			*glibc = name
		}
	}
}

// decompress reads a gzip or zstd layer (told by its magic) or a plain tar.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return br, nil
}

// MatchLibcFunc retargets a tree copied for one image to the C library of
// that image's base (e.g. nodemods.Retarget with Libc set).
type MatchLibcFunc func(ctx context.Context, dir string, p platform.Platform, libc string) error

// RetargetLibc is the MatchLibcFunc the release uses: nodemods.Retarget.
func RetargetLibc(ctx context.Context, dir string, p platform.Platform, libc string) error {
	_, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dir, Target: p, Libc: libc})
	return err
}

// treeForLibc returns the tree to put in an image whose base has C library
// libc: the source trees are built for glibc (like the payloads), so a musl
// base gets a copy retargeted to musl. Either way nothing built for the
// other C library (or platform) may remain; the refusal names the package.
func treeForLibc(ctx context.Context, match MatchLibcFunc, dir, scratch string, p platform.Platform, libc string) (string, error) {
	check := libc
	if check == "" {
		check = nodemods.Glibc // no loader in the base: keep the payloads' C library
	}
	if check == nodemods.Musl {
		if match == nil {
			match = RetargetLibc
		}
		if err := filetree.Copy(dir, scratch, filetree.CopyOptions{Symlinks: filetree.KeepLinks, Modes: filetree.SourceModes}); err != nil {
			return "", fmt.Errorf("copy %s for musl: %w", dir, err)
		}
		if err := match(ctx, scratch, p, check); err != nil {
			return "", fmt.Errorf("native modules for the musl base: %w", err)
		}
		dir = scratch
	}
	bad, err := nodemods.CheckLibc(dir, p, check)
	if err != nil {
		return "", err
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("native modules do not match the base (%s with %s):\n  %s", p.ID, check, strings.Join(bad, "\n  "))
	}
	return dir, nil
}
