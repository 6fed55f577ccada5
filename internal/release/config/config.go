// Package config loads and validates release.yaml, the one file that tells
// `release` what to build (package names, app paths, platforms, images).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/second-inc/second-release/internal/release/platform"
)

// FileName is the config file at the repository root.
const FileName = "release.yaml"

// Default base images, pinned by digest: node 20 on Alpine for the web server;
// node 20 on Debian (glibc, like the payloads' native modules) for the worker.
const (
	DefaultWebBase    = "docker.io/library/node:20-alpine@sha256:fb4cd12c85ee03686f6af5362a0b0d56d50c58a04632e6c0fb8363f609372293"
	DefaultWorkerBase = "docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0"
)

// Config is release.yaml.
type Config struct {
	// Scope is the npm scope, e.g. "@second-inc".
	Scope string `yaml:"scope"`
	// Launcher is the launcher package's name within the scope ("cli").
	Launcher string `yaml:"launcher"`
	// PayloadPrefix names payloads: <scope>/<prefix>-<platform>.
	PayloadPrefix string `yaml:"payloadPrefix"`
	// Apps are the web and worker sources (relative to the config file).
	Apps Apps `yaml:"apps"`
	// Platforms are the payload targets (default: all four).
	Platforms []string `yaml:"platforms"`
	// Out is the output dir (default dist).
	Out    string `yaml:"out"`
	Images Images `yaml:"images"`
	Sign   Sign   `yaml:"sign"`
	NPM    NPM    `yaml:"npm"`

	// Dir is the directory release.yaml was read from; relative paths resolve against it.
	Dir string `yaml:"-"`
}

// Apps locates the product sources.
type Apps struct {
	Web         string `yaml:"web"`
	Worker      string `yaml:"worker"`
	WorkerEntry string `yaml:"workerEntry"` // relative to Worker, default src/index.mjs
}

// Images configures `release images`.
type Images struct {
	// Platforms are OCI platforms, default linux/amd64 and linux/arm64.
	Platforms []string `yaml:"platforms"`
	Web       Image    `yaml:"web"`
	Worker    Image    `yaml:"worker"`
	// Repository is the default push prefix (e.g. ghcr.io/second-inc); empty: no push.
	Repository string `yaml:"repository"`
	// Source is the org.opencontainers.image.source label.
	Source string `yaml:"source"`
}

// Image is one image's settings.
type Image struct {
	Name string `yaml:"name"` // repository name under the prefix, e.g. second-web
	Base string `yaml:"base"` // base image, pinned by digest
	Port int    `yaml:"port"`
}

// Sign configures cosign signing; empty Key: images are not signed by publish.
type Sign struct {
	Key string `yaml:"key"`
}

// NPM configures `release publish` defaults.
type NPM struct {
	Registry string `yaml:"registry"`
	Access   string `yaml:"access"` // public | restricted
}

// FieldError names the release.yaml field that is wrong and what to do.
type FieldError struct {
	File, Field, Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %q: %s", e.File, e.Field, e.Problem)
}

// Errors collects every problem found, so one run reports them all.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates path (release.yaml), applying defaults.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s not found: run release from the repository root or pass --config", path)
		}
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(b, abs)
}

// Parse decodes and validates config bytes; path names the file in errors
// and anchors relative paths.
func Parse(b []byte, path string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w (see README for the fields release.yaml takes)", path, err)
	}
	c.Dir = filepath.Dir(path)
	c.applyDefaults()
	if err := c.validate(path); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Scope == "" {
		c.Scope = "@second-inc"
	}
	if c.Launcher == "" {
		c.Launcher = "cli"
	}
	if c.PayloadPrefix == "" {
		c.PayloadPrefix = "cli-local"
	}
	if c.Apps.Web == "" {
		c.Apps.Web = "examples/app/web"
	}
	if c.Apps.Worker == "" {
		c.Apps.Worker = "examples/app/worker"
	}
	if c.Apps.WorkerEntry == "" {
		c.Apps.WorkerEntry = "src/index.mjs"
	}
	if len(c.Platforms) == 0 {
		c.Platforms = platform.IDs()
	}
	if c.Out == "" {
		c.Out = "dist"
	}
	if len(c.Images.Platforms) == 0 {
		c.Images.Platforms = []string{"linux/amd64", "linux/arm64"}
	}
	if c.Images.Web.Name == "" {
		c.Images.Web.Name = "second-web"
	}
	if c.Images.Worker.Name == "" {
		c.Images.Worker.Name = "second-worker"
	}
	// Pinned defaults (multi-arch index digests as published for these tags);
	// bump them deliberately, or build reproducible ones with nix/images.nix.
	if c.Images.Web.Base == "" {
		c.Images.Web.Base = DefaultWebBase
	}
	if c.Images.Worker.Base == "" {
		c.Images.Worker.Base = DefaultWorkerBase
	}
	if c.Images.Web.Port == 0 {
		c.Images.Web.Port = 3000
	}
	if c.Images.Worker.Port == 0 {
		c.Images.Worker.Port = 3001
	}
	if c.NPM.Access == "" {
		c.NPM.Access = "public"
	}
}

var (
	scopeRe   = regexp.MustCompile(`^@[a-z0-9][a-z0-9._-]*$`)
	pkgNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	digestRe  = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
)

func (c *Config) validate(file string) error {
	var errs Errors
	bad := func(field, problem string) {
		errs = append(errs, &FieldError{File: file, Field: field, Problem: problem})
	}
	if !scopeRe.MatchString(c.Scope) {
		bad("scope", fmt.Sprintf("%q is not an npm scope: use lower case like \"@second-inc\"", c.Scope))
	}
	if !pkgNameRe.MatchString(c.Launcher) {
		bad("launcher", fmt.Sprintf("%q is not a valid npm package name", c.Launcher))
	}
	if !pkgNameRe.MatchString(c.PayloadPrefix) {
		bad("payloadPrefix", fmt.Sprintf("%q is not a valid npm package name prefix", c.PayloadPrefix))
	}
	for field, dir := range map[string]string{"apps.web": c.Apps.Web, "apps.worker": c.Apps.Worker} {
		if st, err := os.Stat(c.Path(dir)); err != nil || !st.IsDir() {
			bad(field, fmt.Sprintf("app directory %s does not exist: point it at a checkout of the app", c.Path(dir)))
		}
	}
	if filepath.IsAbs(c.Apps.WorkerEntry) || strings.HasPrefix(filepath.Clean(c.Apps.WorkerEntry), "..") {
		bad("apps.workerEntry", "must be a path inside apps.worker")
	}
	seen := map[string]bool{}
	for i, id := range c.Platforms {
		if _, err := platform.Parse(id); err != nil {
			bad(fmt.Sprintf("platforms[%d]", i), err.Error())
		}
		if seen[id] {
			bad(fmt.Sprintf("platforms[%d]", i), fmt.Sprintf("%q is listed twice", id))
		}
		seen[id] = true
	}
	for i, p := range c.Images.Platforms {
		if p != "linux/amd64" && p != "linux/arm64" {
			bad(fmt.Sprintf("images.platforms[%d]", i), fmt.Sprintf("%q is not supported (linux/amd64, linux/arm64)", p))
		}
	}
	for field, img := range map[string]Image{"images.web": c.Images.Web, "images.worker": c.Images.Worker} {
		if img.Base != "" && !digestRe.MatchString(img.Base) {
			bad(field+".base", fmt.Sprintf("%q is not pinned by digest: write it as name@sha256:<64 hex>", img.Base))
		}
		if img.Port < 1 || img.Port > 65535 {
			bad(field+".port", fmt.Sprintf("%d is not a TCP port", img.Port))
		}
	}
	if c.NPM.Access != "public" && c.NPM.Access != "restricted" {
		bad("npm.access", fmt.Sprintf("%q must be public or restricted", c.NPM.Access))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Path resolves p against the config file's directory.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// OutDir is the absolute output directory.
func (c *Config) OutDir() string { return c.Path(c.Out) }

// LauncherName is the launcher's npm name, e.g. @second-inc/cli.
func (c *Config) LauncherName() string { return c.Scope + "/" + c.Launcher }

// PayloadName is a payload's npm name, e.g. @second-inc/cli-local-darwin-arm64.
func (c *Config) PayloadName(platformID string) string {
	return c.Scope + "/" + c.PayloadPrefix + "-" + platformID
}
