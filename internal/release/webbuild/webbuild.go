// Package webbuild builds a Next.js app (output: "standalone") into the
// self-contained tree a payload carries as dist/web: server.js, .next/ with
// .next/static, public/ and node_modules/, with no symbolic links, and the
// same bytes every time the same commit is built.
package webbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/nodemods"
)

// DefaultStageDir is where the app is staged and built. Next.js writes the
// absolute build path into server.js, required-server-files.json and its
// compiled chunks, so the path must be the same on every build for the output
// to be reproducible; a lock file next to it serialises concurrent builds.
const DefaultStageDir = "/tmp/second-release/web-stage"

// Options says what to build and where.
type Options struct {
	AppDir          string // Next.js app source; never modified (it is built in a staging copy)
	OutDir          string // created; receives server.js, .next/ (incl .next/static), public/, node_modules/
	BuildID         string // fixed Next.js build id (the commit) for reproducibility
	SourceDateEpoch time.Time
	Log             *slog.Logger

	// StageDir overrides DefaultStageDir (tests; hosts without /tmp). Builds
	// are only comparable when they used the same StageDir.
	StageDir string
	// NPM and Node name the executables; default "npm" and "node" from PATH.
	NPM, Node string
}

// Build installs the app's dependencies, runs `next build` and assembles the
// standalone tree in OutDir.
func Build(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	log := o.Log
	start := time.Now()

	unlock, err := lockStage(ctx, o.StageDir)
	if err != nil {
		return err
	}
	defer unlock()

	// An app inside an npm workspace is staged with its workspace root,
	// whose lock file pins it and whose packages it may import.
	root, rel, err := nodemods.WorkspaceRoot(o.AppDir)
	if err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	stageRoot := o.StageDir
	stage := filepath.Join(stageRoot, rel) // the staged app
	if err := os.RemoveAll(stageRoot); err != nil {
		return fmt.Errorf("web build: clear staging dir %s: %w", stageRoot, err)
	}
	defer os.RemoveAll(stageRoot)
	log.Info("staging web app", "app", o.AppDir, "workspace", root, "stage", stage)
	err = filetree.Copy(root, stageRoot, filetree.CopyOptions{Skip: func(r string, d fs.DirEntry) bool {
		name := d.Name()
		return (d.IsDir() && (name == "node_modules" || name == ".git" || name == ".next")) ||
			filepath.Join(root, filepath.FromSlash(r)) == o.OutDir
	}})
	if err != nil {
		return fmt.Errorf("web build: stage %s: %w", root, err)
	}
	if err := seedPreviewKeys(stage, o.BuildID); err != nil {
		return err
	}

	env := buildEnv(o)
	install := []string{"ci"}
	if !exists(filepath.Join(stageRoot, "package-lock.json")) && !exists(filepath.Join(stageRoot, "npm-shrinkwrap.json")) {
		log.Warn("web app has no package-lock.json: using npm install, the build is not pinned", "app", o.AppDir)
		install = []string{"install"}
	}
	install = append(install, "--no-audit", "--no-fund", "--prefer-offline")
	if err := run(ctx, log, stageRoot, env, o.NPM, install...); err != nil {
		return fmt.Errorf("web build: install dependencies of %s: %w", o.AppDir, err)
	}
	nextBin, ok := resolveNext(stageRoot, stage)
	if !ok {
		return fmt.Errorf("web build: %s does not depend on next (node_modules/next missing after install): add next to its package.json", o.AppDir)
	}
	if err := run(ctx, log, stage, env, o.Node, nextBin, "build"); err != nil {
		return fmt.Errorf("web build: next build in %s: %w", o.AppDir, err)
	}
	if err := assemble(stage, rel, o); err != nil {
		return err
	}
	log.Info("web build done", "out", o.OutDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (o *Options) defaults() error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StageDir == "" {
		o.StageDir = DefaultStageDir
	}
	if o.NPM == "" {
		o.NPM = "npm"
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if o.AppDir == "" {
		return errors.New("web build: no app dir given (apps.web in release.yaml)")
	}
	if o.OutDir == "" {
		return errors.New("web build: no output dir given")
	}
	if o.BuildID == "" {
		return errors.New("web build: no build id given (pass the commit so builds are reproducible)")
	}
	for _, p := range []*string{&o.AppDir, &o.OutDir, &o.StageDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("web build: %w", err)
		}
		*p = abs
	}
	st, err := os.Stat(o.AppDir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("web build: app dir %s does not exist (apps.web in release.yaml)", o.AppDir)
	}
	if !exists(filepath.Join(o.AppDir, "package.json")) {
		return fmt.Errorf("web build: %s has no package.json: apps.web must point at a Next.js app", o.AppDir)
	}
	if entries, err := os.ReadDir(o.OutDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("web build: output dir %s exists and is not empty: remove it first", o.OutDir)
	}
	if within(o.AppDir, o.OutDir) || within(o.StageDir, o.OutDir) || within(o.OutDir, o.StageDir) {
		return fmt.Errorf("web build: output dir %s must lie outside the app dir and the staging dir", o.OutDir)
	}
	return nil
}

func buildEnv(o Options) []string {
	env := append(npmconf.Quiet(os.Environ()),
		"NEXT_TELEMETRY_DISABLED=1",
		"SECOND_BUILD_ID="+o.BuildID,
	)
	if !o.SourceDateEpoch.IsZero() {
		env = append(env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.SourceDateEpoch.Unix(), 10))
	}
	// Next.js otherwise writes a random server-actions key into the build. The
	// derived key is public; the runtime should set its own
	// NEXT_SERVER_ACTIONS_ENCRYPTION_KEY, which Next.js prefers at run time.
	if os.Getenv("NEXT_SERVER_ACTIONS_ENCRYPTION_KEY") == "" {
		env = append(env, "NEXT_SERVER_ACTIONS_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(derive(o.BuildID, "server-actions", 32)))
	}
	return env
}

// seedPreviewKeys writes the cache file Next.js reads its preview-mode keys
// from, so they are derived from the build id instead of random.
func seedPreviewKeys(stage, buildID string) error {
	dir := filepath.Join(stage, ".next", "cache")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	keys := map[string]any{"expireAt": int64(253402300799000)} // year 9999: never rotated during a build
	for k, v := range previewKeys(buildID) {
		keys[k] = v
	}
	data, _ := json.Marshal(keys)
	if err := os.WriteFile(filepath.Join(dir, ".previewinfo"), data, 0o644); err != nil {
		return fmt.Errorf("web build: seed preview keys: %w", err)
	}
	return nil
}

func previewKeys(buildID string) map[string]string {
	return map[string]string{
		"previewModeId":            hex.EncodeToString(derive(buildID, "preview-id", 16)),
		"previewModeSigningKey":    hex.EncodeToString(derive(buildID, "preview-signing", 32)),
		"previewModeEncryptionKey": hex.EncodeToString(derive(buildID, "preview-encryption", 32)),
	}
}

func derive(buildID, label string, n int) []byte {
	sum := sha256.Sum256([]byte("second-release webbuild " + label + "\x00" + buildID))
	return sum[:n]
}

// assemble turns the staged build output into OutDir.
func assemble(stage, rel string, o Options) error {
	standalone := filepath.Join(stage, ".next", "standalone")
	if err := os.MkdirAll(filepath.Dir(o.OutDir), 0o755); err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	switch {
	case exists(filepath.Join(standalone, "server.js")):
		if err := filetree.Copy(standalone, o.OutDir, filetree.CopyOptions{}); err != nil {
			return fmt.Errorf("web build: copy standalone output: %w", err)
		}
	case rel != "." && exists(filepath.Join(standalone, rel, "server.js")):
		// In a workspace Next.js mirrors the app's place under the workspace
		// root; the payload wants server.js on top, so the app's files move
		// up and everything else (node_modules, other workspace packages)
		// keeps its place relative to the root, which node resolution needs.
		if err := filetree.Copy(standalone, o.OutDir, filetree.CopyOptions{Skip: func(r string, d fs.DirEntry) bool {
			return r == filepath.ToSlash(rel)
		}}); err != nil {
			return fmt.Errorf("web build: copy standalone output: %w", err)
		}
		if err := filetree.Copy(filepath.Join(standalone, rel), o.OutDir, filetree.CopyOptions{}); err != nil {
			return fmt.Errorf("web build: copy standalone output of %s: %w", rel, err)
		}
		// Drop the now empty parents (apps/) of the app's old place.
		for d := filepath.Dir(filepath.Join(o.OutDir, rel)); d != o.OutDir; d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
	default:
		return fmt.Errorf("web build: next build produced no .next/standalone/server.js: set output: \"standalone\" in %s's next.config", o.AppDir)
	}
	if st := filepath.Join(stage, ".next", "static"); exists(st) {
		if err := filetree.Copy(st, filepath.Join(o.OutDir, ".next", "static"), filetree.CopyOptions{}); err != nil {
			return fmt.Errorf("web build: copy .next/static: %w", err)
		}
	}
	if pub := filepath.Join(stage, "public"); exists(pub) {
		if err := filetree.Copy(pub, filepath.Join(o.OutDir, "public"), filetree.CopyOptions{}); err != nil {
			return fmt.Errorf("web build: copy public/: %w", err)
		}
	}
	if err := fixBuildID(o.OutDir, o.BuildID, o.Log); err != nil {
		return err
	}
	if err := fixPreviewKeys(o.OutDir, o.BuildID); err != nil {
		return err
	}
	if err := sortManifests(filepath.Join(o.OutDir, ".next")); err != nil {
		return err
	}
	if err := filetree.Dereference(o.OutDir); err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	if !exists(filepath.Join(o.OutDir, "server.js")) {
		return fmt.Errorf("web build: %s has no server.js after assembly", o.OutDir)
	}
	if err := filetree.Normalize(o.OutDir, o.SourceDateEpoch); err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	return nil
}

// fixBuildID replaces a random build id with the wanted one, for apps whose
// next.config does not read SECOND_BUILD_ID in generateBuildId. The id is a
// 21-character random string, so replacing its bytes everywhere is safe.
func fixBuildID(out, want string, log *slog.Logger) error {
	raw, err := os.ReadFile(filepath.Join(out, ".next", "BUILD_ID"))
	if err != nil {
		return fmt.Errorf("web build: read .next/BUILD_ID: %w", err)
	}
	got := strings.TrimSpace(string(raw))
	if got == want {
		return nil
	}
	if len(got) < 16 {
		return fmt.Errorf("web build: build id is %q, not %q, and too short to rewrite safely: make generateBuildId in next.config return process.env.SECOND_BUILD_ID", got, want)
	}
	log.Warn("next.config does not use SECOND_BUILD_ID: rewriting the random build id", "from", got, "to", want)
	return replaceEverywhere(out, map[string]string{got: want})
}

// fixPreviewKeys makes the preview-mode keys in prerender-manifest.json the
// derived ones. Next.js ignores the seeded cache file when it thinks it runs
// in a container (is-docker) and then picks random keys; they are random hex
// strings, so replacing their bytes everywhere is safe.
func fixPreviewKeys(out, buildID string) error {
	p := filepath.Join(out, ".next", "prerender-manifest.json")
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("web build: %w", err)
	}
	var m struct {
		Preview map[string]string `json:"preview"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("web build: read %s: %w", p, err)
	}
	want := previewKeys(buildID)
	pairs := map[string]string{}
	for k, v := range m.Preview {
		if w, ok := want[k]; ok && v != w && len(v) >= 32 {
			pairs[v] = w
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return replaceEverywhere(out, pairs)
}

// replaceEverywhere replaces each key's bytes by its value in every file
// under root and renames path components equal to a key.
func replaceEverywhere(root string, pairs map[string]string) error {
	var renames []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := pairs[d.Name()]; ok {
			renames = append(renames, p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		changed := false
		for from, to := range pairs {
			if bytes.Contains(data, []byte(from)) {
				data = bytes.ReplaceAll(data, []byte(from), []byte(to))
				changed = true
			}
		}
		if !changed {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(p, data, info.Mode().Perm())
	})
	if err != nil {
		return fmt.Errorf("web build: rewrite random values: %w", err)
	}
	for i := len(renames) - 1; i >= 0; i-- {
		r := renames[i]
		if err := os.Rename(r, filepath.Join(filepath.Dir(r), pairs[filepath.Base(r)])); err != nil {
			return fmt.Errorf("web build: rewrite random values: %w", err)
		}
	}
	return nil
}

// resolveNext finds next's CLI the way node would from the staged app.
func resolveNext(stageRoot, stage string) (string, bool) {
	for dir := stage; ; dir = filepath.Dir(dir) {
		bin := filepath.Join(dir, "node_modules", "next", "dist", "bin", "next")
		if exists(bin) {
			return bin, true
		}
		if dir == stageRoot || len(dir) <= len(stageRoot) {
			return "", false
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
