package oci

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Source supplies the built web and worker trees for one target platform:
// each image's per-platform layer carries native node modules for its own
// architecture, so the trees differ per platform.
type Source interface {
	// Trees returns the web (Next standalone: server.js …) and worker
	// (worker.mjs …) directories for p. tmp is a scratch dir the caller removes.
	Trees(ctx context.Context, p platform.Platform, tmp string) (web, worker string, err error)
}

// RetargetFunc swaps the native node modules in dir for p's builds (the same
// per-target resolution the payloads use, e.g. nodemods.Retarget).
type RetargetFunc func(ctx context.Context, dir string, p platform.Platform) error

// DirSource takes the trees from two directories. With Retarget set each
// platform gets a copy retargeted to it; without it the trees are used as they
// are (fine for trees without native modules).
type DirSource struct {
	Web, Worker string
	Retarget    RetargetFunc
}

// Trees implements Source.
func (s DirSource) Trees(ctx context.Context, p platform.Platform, tmp string) (string, string, error) {
	for flag, d := range map[string]string{"web": s.Web, "worker": s.Worker} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", "", fmt.Errorf("%s tree %q is not a directory: run `release build` first or pass --%s DIR", flag, d, flag)
		}
	}
	if s.Retarget == nil {
		return s.Web, s.Worker, nil
	}
	var out [2]string
	for i, d := range []string{s.Web, s.Worker} {
		dst := filepath.Join(tmp, p.ID, filepath.Base(d)+fmt.Sprint(i))
		// Links stay links (os.CopyFS refuses them); Retarget works on the copy.
		if err := filetree.Copy(d, dst, filetree.CopyOptions{Symlinks: filetree.KeepLinks, Modes: filetree.SourceModes}); err != nil {
			return "", "", fmt.Errorf("copy %s for %s: %w", d, p.ID, err)
		}
		if err := s.Retarget(ctx, dst, p); err != nil {
			return "", "", fmt.Errorf("native modules of %s for %s: %w", d, p.ID, err)
		}
		out[i] = dst
	}
	return out[0], out[1], nil
}

// PayloadSource takes the trees out of the payload tarballs `release build`
// wrote (dist/npm/*.tgz, listed in dist/release.json): dist/web and
// dist/worker of the linux payload for the image's architecture already carry
// that architecture's native modules.
type PayloadSource struct {
	Dist    string
	Release *artifact.Release
}

// Trees implements Source.
func (s PayloadSource) Trees(_ context.Context, p platform.Platform, tmp string) (string, string, error) {
	var tgz string
	for _, a := range s.Release.Filter(artifact.KindPayload) {
		if a.Platform == p.ID && a.Path != "" {
			tgz = filepath.Join(s.Dist, filepath.FromSlash(a.Path))
		}
	}
	if tgz == "" {
		return "", "", fmt.Errorf("%s lists no %s payload: build it (release build --platform %s) or pass --web and --worker", filepath.Join(s.Dist, artifact.FileName), p.ID, p.ID)
	}
	dst := filepath.Join(tmp, p.ID)
	if err := extractPayload(tgz, dst); err != nil {
		return "", "", err
	}
	web, worker := filepath.Join(dst, "dist", "web"), filepath.Join(dst, "dist", "worker")
	for _, d := range []string{web, worker} {
		if _, err := os.Stat(d); err != nil {
			return "", "", fmt.Errorf("payload %s has no %s: rebuild it with `release build`", tgz, strings.TrimPrefix(d, dst+string(filepath.Separator)))
		}
	}
	return web, worker, nil
}

// extractPayload unpacks package/dist/{web,worker}/ of an npm tarball.
func extractPayload(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("open payload: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read payload %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read payload %s: %w", tgz, err)
		}
		rel, ok := strings.CutPrefix(path.Clean(h.Name), "package/")
		if !ok || !(strings.HasPrefix(rel, "dist/web/") || strings.HasPrefix(rel, "dist/worker/")) {
			continue
		}
		if !fs.ValidPath(rel) {
			return fmt.Errorf("payload %s: unsafe path %q", tgz, h.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFileFrom(target, tr, os.FileMode(h.Mode)&0o755|0o644)
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				err = os.Symlink(h.Linkname, target)
			}
		}
		if err != nil {
			return fmt.Errorf("extract %s from %s: %w", h.Name, tgz, err)
		}
	}
}

func writeFileFrom(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
