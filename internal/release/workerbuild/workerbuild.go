// Package workerbuild bundles the Node worker into one ESM file, worker.mjs,
// with esbuild. Native modules cannot be bundled: they stay external and are
// copied, with their dependencies, into node_modules next to the bundle,
// where nodemods can swap them for the payload's platform.
package workerbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/nodemods"
)

// DefaultEntry is the worker entry when release.yaml sets no apps.workerEntry.
const DefaultEntry = "src/index.mjs"

// Banner gives the ESM bundle a require() so bundled CommonJS code can load
// node builtins and the external native packages.
const Banner = `import { createRequire } from "module"; const require = createRequire(import.meta.url);`

// Options says what to bundle and where.
type Options struct {
	AppDir string // the worker's source (package.json, lock file); never modified
	Entry  string // relative to AppDir; default DefaultEntry
	OutDir string // created; receives worker.mjs (+ node_modules/ with the kept-external native packages)
	Log    *slog.Logger

	SourceDateEpoch time.Time // mtimes of everything written; zero leaves them
	NPM             string    // npm executable; default "npm" from PATH
}

// Build installs the worker's dependencies in a staging copy and bundles it.
func Build(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	start := time.Now()
	// A worker inside an npm workspace is staged with its workspace root,
	// whose lock file pins it and whose packages it may import.
	root, rel, err := nodemods.WorkspaceRoot(o.AppDir)
	if err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	stage, err := os.MkdirTemp("", "second-workerbuild-")
	if err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	defer os.RemoveAll(stage)
	err = filetree.Copy(root, stage, filetree.CopyOptions{Skip: func(r string, d fs.DirEntry) bool {
		return (d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == ".next")) ||
			filepath.Join(root, filepath.FromSlash(r)) == o.OutDir
	}})
	if err != nil {
		return fmt.Errorf("worker build: stage %s: %w", root, err)
	}
	if err := installDeps(ctx, o, stage); err != nil {
		return err
	}
	pkgs, err := nodemods.Scan(stage)
	if err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	external := externals(pkgs)
	if len(external) > 0 {
		o.Log.Info("keeping native packages external", "packages", strings.Join(external, ", "))
	}
	code, used, err := bundle(stage, filepath.Join(rel, o.Entry), external)
	if err != nil {
		return fmt.Errorf("worker build: bundle %s: %w", filepath.Join(o.AppDir, o.Entry), err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.OutDir, "worker.mjs"), code, 0o644); err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	if err := copyExternals(stage, rel, o.OutDir, used); err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	if err := filetree.Dereference(o.OutDir); err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	if err := filetree.Normalize(o.OutDir, o.SourceDateEpoch); err != nil {
		return fmt.Errorf("worker build: %w", err)
	}
	o.Log.Info("worker build done", "out", o.OutDir, "bytes", len(code), "external", used, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (o *Options) defaults() error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NPM == "" {
		o.NPM = "npm"
	}
	if o.Entry == "" {
		o.Entry = DefaultEntry
	}
	if o.AppDir == "" {
		return errors.New("worker build: no app dir given (apps.worker in release.yaml)")
	}
	if o.OutDir == "" {
		return errors.New("worker build: no output dir given")
	}
	var err error
	if o.AppDir, err = filepath.Abs(o.AppDir); err != nil {
		return err
	}
	if o.OutDir, err = filepath.Abs(o.OutDir); err != nil {
		return err
	}
	if st, err := os.Stat(o.AppDir); err != nil || !st.IsDir() {
		return fmt.Errorf("worker build: app dir %s does not exist (apps.worker in release.yaml)", o.AppDir)
	}
	if filepath.IsAbs(o.Entry) || strings.HasPrefix(filepath.Clean(o.Entry), "..") {
		return fmt.Errorf("worker build: entry %q must be a path inside the app dir (apps.workerEntry in release.yaml)", o.Entry)
	}
	if _, err := os.Stat(filepath.Join(o.AppDir, o.Entry)); err != nil {
		return fmt.Errorf("worker build: entry %s not found (apps.workerEntry in release.yaml)", filepath.Join(o.AppDir, o.Entry))
	}
	if entries, err := os.ReadDir(o.OutDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("worker build: output dir %s exists and is not empty: remove it first", o.OutDir)
	}
	return nil
}

func installDeps(ctx context.Context, o Options, stage string) error {
	if _, err := os.Stat(filepath.Join(stage, "package.json")); err != nil {
		o.Log.Warn("worker has no package.json: bundling without dependencies", "app", o.AppDir)
		return nil
	}
	args := []string{"ci"}
	if !exists(filepath.Join(stage, "package-lock.json")) && !exists(filepath.Join(stage, "npm-shrinkwrap.json")) {
		o.Log.Warn("worker has no package-lock.json: using npm install, the build is not pinned", "app", o.AppDir)
		args = []string{"install"}
	}
	args = append(args, "--no-audit", "--no-fund", "--prefer-offline")
	o.Log.Info("running", "cmd", "npm "+strings.Join(args, " "), "dir", stage)
	cmd := exec.CommandContext(ctx, o.NPM, args...)
	cmd.Dir = stage
	cmd.Env = npmconf.Quiet(os.Environ())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("worker build: install dependencies of %s: npm %s: %w\n%s", o.AppDir, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// externals names the packages esbuild must not bundle: native ones and the
// packages that depend on them directly (sharp loads its @img/sharp-<platform>
// by a computed name that only works from node_modules).
func externals(pkgs []nodemods.Package) []string {
	native := map[string]bool{}
	for _, p := range pkgs {
		if p.Native() {
			native[p.Name] = true
		}
	}
	set := map[string]bool{}
	for _, p := range pkgs {
		if native[p.Name] {
			set[p.Name] = true
			continue
		}
		for _, d := range p.Deps {
			if native[d] {
				set[p.Name] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// bundle runs esbuild and returns the bundle and the external packages it imports.
func bundle(stage, entry string, external []string) ([]byte, []string, error) {
	ext := make([]string, 0, 2*len(external))
	for _, e := range external {
		ext = append(ext, e, e+"/*")
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir: stage, // paths in the bundle's comments are relative to it
		EntryPoints:   []string{entry},
		Bundle:        true,
		Platform:      api.PlatformNode,
		Format:        api.FormatESModule,
		Engines:       []api.Engine{{Name: api.EngineNode, Version: "20"}},
		Outfile:       "worker.mjs",
		Banner:        map[string]string{"js": Banner},
		External:      ext,
		Metafile:      true,
		Write:         false,
		LogLevel:      api.LogLevelSilent,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, nil, errors.New(strings.TrimSpace(strings.Join(msgs, "\n")))
	}
	if len(res.OutputFiles) != 1 {
		return nil, nil, fmt.Errorf("esbuild wrote %d files, want 1", len(res.OutputFiles))
	}
	var meta struct {
		Outputs map[string]struct {
			Imports []struct {
				Path     string `json:"path"`
				External bool   `json:"external"`
			} `json:"imports"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(res.Metafile), &meta); err != nil {
		return nil, nil, fmt.Errorf("read esbuild metafile: %w", err)
	}
	var used []string
	for _, out := range meta.Outputs {
		for _, imp := range out.Imports {
			name := packageName(imp.Path)
			if imp.External && slices.Contains(external, name) && !slices.Contains(used, name) {
				used = append(used, name)
			}
		}
	}
	sort.Strings(used)
	return res.OutputFiles[0].Contents, used, nil
}

// packageName strips a subpath: @scope/name/x -> @scope/name, name/x -> name.
func packageName(spec string) string {
	parts := strings.Split(spec, "/")
	if strings.HasPrefix(spec, "@") && len(parts) >= 2 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
