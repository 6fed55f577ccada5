// Package payload assembles one platform payload package directory
// (package.json, bin/second, dist/web, dist/worker, dist/runtime,
// manifest.json) from already built parts, refusing trees that
// hold secrets, symbolic links or binaries for another platform.
package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/release/secretscan"
)

// Options says what goes into one payload package.
type Options struct {
	Name     string // npm name, e.g. @second-inc/cli-local-darwin-arm64
	Version  string // release version, stamped into package.json and manifest.json
	Platform platform.Platform
	// TemplateDir is packaging/<platform>: package.json (and README.md, LICENSE if present).
	TemplateDir string
	// Dir is the staging dir to create; it must not exist or be empty.
	Dir string
	// SecondBinary is the Go `second` binary built for Platform.
	SecondBinary string
	// WebDir and WorkerDir are the built, retargeted trees copied to
	// dist/web (must hold server.js) and dist/worker (must hold worker.mjs).
	WebDir, WorkerDir string
	// LinkTrees says WebDir and WorkerDir are this payload's own staging
	// copies, nothing else reads them: their files are hard-linked into the
	// payload (and given its modes and times) instead of copied, which saves
	// writing the largest part of the payload again. Falls back to copying
	// where a link cannot be made (another file system).
	LinkTrees bool
	// RuntimeDir holds bin/ and lib/ for dist/runtime; "" leaves dist/runtime empty.
	RuntimeDir string
	// Natives records mongod, redis and openssl versions and source digests.
	Natives map[string]manifest.Native
	// SourceDateEpoch, if set, becomes every staged file's mtime so the
	// staging dir itself is reproducible for tools other than pack.
	SourceDateEpoch time.Time
	// Logger receives debug lines (dropped files); nil discards them.
	Logger *slog.Logger
}

// Files the payload template may contribute besides package.json.
var templateExtras = []string{"README.md", "LICENSE"}

// Assemble builds the payload dir and returns its manifest and the exact
// bytes written to manifest.json (whose sha256 the launcher records).
// On failure the staging dir is removed.
func Assemble(ctx context.Context, o Options) (m *manifest.Manifest, manifestBytes []byte, err error) {
	if err := o.validate(); err != nil {
		return nil, nil, fmt.Errorf("assemble payload %s: %w", o.Name, err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("assemble payload %s: %w", o.Name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(o.Dir)
		}
	}()
	m, manifestBytes, err = o.assemble(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("assemble payload %s@%s for %s: %w", o.Name, o.Version, o.Platform.ID, err)
	}
	return m, manifestBytes, nil
}

func (o *Options) validate() error {
	var problems []string
	if o.Name == "" {
		problems = append(problems, "Name is empty")
	}
	if o.Version == "" {
		problems = append(problems, "Version is empty")
	}
	if _, err := platform.Parse(o.Platform.ID); err != nil {
		problems = append(problems, err.Error())
	}
	if o.Dir == "" {
		problems = append(problems, "Dir (staging dir) is empty")
	} else if ents, err := os.ReadDir(o.Dir); err == nil && len(ents) > 0 {
		problems = append(problems, fmt.Sprintf("staging dir %s is not empty: remove it first", o.Dir))
	}
	for _, f := range []struct{ what, path string }{
		{"package.json template", filepath.Join(o.TemplateDir, "package.json")},
		{"second binary", o.SecondBinary},
	} {
		if st, err := os.Stat(f.path); err != nil || !st.Mode().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s %q not found", f.what, f.path))
		}
	}
	for _, d := range []struct{ what, dir, must, hint string }{
		{"web dir", o.WebDir, "server.js", `build the Next.js app with output: "standalone"`},
		{"worker dir", o.WorkerDir, "worker.mjs", "bundle the worker into worker.mjs first"},
	} {
		if st, err := os.Stat(d.dir); err != nil || !st.IsDir() {
			problems = append(problems, fmt.Sprintf("%s %q not found", d.what, d.dir))
		} else if st, err := os.Lstat(filepath.Join(d.dir, d.must)); err != nil || !st.Mode().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s %s has no %s: %s", d.what, d.dir, d.must, d.hint))
		}
	}
	if o.RuntimeDir != "" {
		if st, err := os.Stat(o.RuntimeDir); err != nil || !st.IsDir() {
			problems = append(problems, fmt.Sprintf("runtime dir %q not found", o.RuntimeDir))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// job copies one file into the payload.
type job struct {
	src  string
	rel  string // slash path in the payload
	mode fs.FileMode
	link bool // the source may become the payload's file (Options.LinkTrees)
}

func (o *Options) assemble(ctx context.Context) (*manifest.Manifest, []byte, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs, err := o.plan(log)
	if err != nil {
		return nil, nil, err
	}
	rels := make([]string, len(jobs))
	for i, j := range jobs {
		rels[i] = j.rel
	}
	// Refuse secrets before a single byte is copied.
	if err := secretscan.Check(o.Dir, rels); err != nil {
		return nil, nil, err
	}

	files, err := copyAll(ctx, o.Dir, jobs)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "dist", "runtime"), 0o755); err != nil {
		return nil, nil, err
	}

	pj, err := o.packageJSON()
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "package.json"), pj, 0o644); err != nil {
		return nil, nil, err
	}
	files["package.json"] = manifest.File{SHA256: sum(pj), Size: int64(len(pj)), Mode: "0644"}

	// The binary check needs the tree in place: it reads every ELF/Mach-O.
	vs, err := binarycheck.CheckPlatform(o.Dir, o.Platform)
	if err != nil {
		return nil, nil, fmt.Errorf("check binaries: %w", err)
	}
	if err := binarycheck.AsError(vs); err != nil {
		return nil, nil, fmt.Errorf("payload for %s holds binaries for another platform: %w", o.Platform.ID, err)
	}
	return o.writeManifest(files)
}

// plan lists every file to copy into the payload: the binary, the web,
// worker and runtime trees and the template's extras. It refuses links and
// special files in the trees, which npm would drop.
func (o *Options) plan(log *slog.Logger) ([]job, error) {
	jobs := []job{{src: o.SecondBinary, rel: "bin/second", mode: 0o755}}
	var bad []string
	add := func(srcRoot, dstRel string, only []string) error {
		js, b, err := collect(srcRoot, dstRel, only, log)
		if o.LinkTrees && (srcRoot == o.WebDir || srcRoot == o.WorkerDir) {
			for i := range js {
				js[i].link = true
			}
		}
		jobs = append(jobs, js...)
		bad = append(bad, b...)
		return err
	}
	if err := add(o.WebDir, "dist/web", nil); err != nil {
		return nil, err
	}
	if err := add(o.WorkerDir, "dist/worker", nil); err != nil {
		return nil, err
	}
	if o.RuntimeDir != "" {
		if err := add(o.RuntimeDir, "dist/runtime", []string{"bin", "lib"}); err != nil {
			return nil, err
		}
	}
	for _, extra := range templateExtras {
		p := filepath.Join(o.TemplateDir, extra)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			jobs = append(jobs, job{src: p, rel: extra, mode: 0o644})
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("npm drops symbolic links and special files, replace these with regular files:\n  %s", strings.Join(bad, "\n  "))
	}
	return jobs, nil
}

// writeManifest writes the payload's manifest listing files, then stamps
// every path with SourceDateEpoch when it is set.
func (o *Options) writeManifest(files map[string]manifest.File) (*manifest.Manifest, []byte, error) {
	natives := o.Natives
	if natives == nil {
		natives = map[string]manifest.Native{}
	}
	m := &manifest.Manifest{Name: o.Name, Version: o.Version, Platform: o.Platform.ID, Natives: natives, Files: files}
	mb, err := m.Marshal()
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, manifest.FileName), mb, 0o644); err != nil {
		return nil, nil, err
	}
	if !o.SourceDateEpoch.IsZero() {
		if err := setTimes(o.Dir, o.SourceDateEpoch); err != nil {
			return nil, nil, err
		}
	}
	return m, mb, nil
}

// packageJSON stamps the template with this payload's identity.
func (o *Options) packageJSON() ([]byte, error) {
	p, err := pack.ReadPackageJSON(filepath.Join(o.TemplateDir, "package.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		v   any
	}{
		{"name", o.Name},
		{"version", o.Version},
		{"os", []string{o.Platform.NodeOS}},
		{"cpu", []string{o.Platform.CPU}},
		{"bin", map[string]string{"second-local": "bin/second"}},
		{"files", []string{"bin/", "dist/", manifest.FileName}},
	} {
		if err := p.Set(f.key, f.v); err != nil {
			return nil, err
		}
	}
	// Lifecycle scripts would run on the user's machine at install time;
	// a payload is data plus one binary and needs none.
	p.Delete("scripts")
	return p.Marshal()
}

// collect lists srcRoot's regular files as jobs under dstRel. only, if set,
// limits the copy to those top-level entries. It returns links and special
// files as bad, and drops .gitignore/.npmignore: npm renames .gitignore to
// .npmignore on install, which would break the manifest check, and neither
// file does anything at run time.
func collect(srcRoot, dstRel string, only []string, log *slog.Logger) (jobs []job, bad []string, err error) {
	err = filepath.WalkDir(srcRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == srcRoot {
			return nil
		}
		rel, err := filepath.Rel(srcRoot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if only != nil {
			top, _, _ := strings.Cut(rel, "/")
			if !contains(only, top) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		dst := path.Join(dstRel, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			bad = append(bad, dst+" (symbolic link, from "+p+")")
			return nil
		case !t.IsRegular():
			bad = append(bad, dst+" (not a regular file, from "+p+")")
			return nil
		}
		if b := d.Name(); b == ".gitignore" || b == ".npmignore" {
			log.Debug("payload: dropping ignore file", "path", dst)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		jobs = append(jobs, job{src: p, rel: dst, mode: pack.NormalMode(info.Mode())})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", srcRoot, err)
	}
	return jobs, bad, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyAll copies the jobs into dir in parallel, hashing each file as it is
// written so the manifest needs no second read.
func copyAll(ctx context.Context, dir string, jobs []job) (map[string]manifest.File, error) {
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].rel < jobs[j].rel })
	for i := 1; i < len(jobs); i++ {
		if jobs[i].rel == jobs[i-1].rel {
			return nil, fmt.Errorf("two sources for %s: %s and %s", jobs[i].rel, jobs[i-1].src, jobs[i].src)
		}
	}
	// Create directories first, serially, so workers only write files.
	made := map[string]bool{}
	for _, j := range jobs {
		d := path.Dir(j.rel)
		if !made[d] {
			if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
				return nil, err
			}
			made[d] = true
		}
	}
	results := make([]manifest.File, len(jobs))
	idx := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), 8)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range idx {
				f, err := copyFile(jobs[i], filepath.Join(dir, filepath.FromSlash(jobs[i].rel)), buf)
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					continue
				}
				results[i] = f
			}
		}()
	}
	var err error
feed:
	for i := range jobs {
		select {
		case idx <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		return nil, err
	}
	files := make(map[string]manifest.File, len(jobs))
	for i, j := range jobs {
		files[j.rel] = results[i]
	}
	return files, nil
}

func copyFile(j job, dst string, buf []byte) (manifest.File, error) {
	if j.link {
		if err := os.Link(j.src, dst); err == nil {
			return linkedFile(j, dst, buf)
		}
	}
	in, err := os.Open(j.src)
	if err != nil {
		return manifest.File{}, fmt.Errorf("copy %s: %w", j.rel, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, j.mode)
	if err != nil {
		return manifest.File{}, fmt.Errorf("copy %s: %w", j.rel, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(out, h), onlyReader{in}, buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, j.mode) // the umask must not change the recorded mode
	}
	if err != nil {
		return manifest.File{}, fmt.Errorf("copy %s to %s: %w", j.src, dst, err)
	}
	return manifest.File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Mode: fmt.Sprintf("%04o", j.mode)}, nil
}

// linkedFile records a file hard-linked into place: its digest (reading is
// still needed for the manifest, writing is not) and the payload's mode.
func linkedFile(j job, dst string, buf []byte) (manifest.File, error) {
	if err := os.Chmod(dst, j.mode); err != nil {
		return manifest.File{}, fmt.Errorf("link %s to %s: %w", j.src, dst, err)
	}
	in, err := os.Open(dst)
	if err != nil {
		return manifest.File{}, fmt.Errorf("link %s to %s: %w", j.src, dst, err)
	}
	defer in.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, onlyReader{in}, buf)
	if err != nil {
		return manifest.File{}, fmt.Errorf("read %s: %w", dst, err)
	}
	return manifest.File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Mode: fmt.Sprintf("%04o", j.mode)}, nil
}

// onlyReader hides (*os.File).WriteTo so CopyBuffer uses our buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func setTimes(root string, t time.Time) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, t, t)
	})
}
