// Package launcher assembles the launcher package (@second-inc/cli) from
// packaging/npm: bin/second.js plus a package.json stamped with the
// release version and, per platform, the payload's name and the sha256 of
// its manifest.json, which the launcher checks before running a payload.
package launcher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/release/secretscan"
)

// PayloadsField is the package.json field recording the payloads.
const PayloadsField = "secondPayloads"

// Options says what goes into the launcher package.
type Options struct {
	TemplateDir string // packaging/npm
	Dir         string // staging dir to create; must not exist or be empty
	Name        string // @second-inc/cli
	Version     string // release version, the same as every payload's
	Payloads    []Payload
	// SourceDateEpoch, if set, becomes every staged file's mtime.
	SourceDateEpoch time.Time
}

// Payload is one platform's payload as the launcher records it.
type Payload struct {
	Platform       string // darwin-arm64 …
	Name           string // @second-inc/cli-local-darwin-arm64
	ManifestSHA256 string // hex sha256 of that payload's manifest.json
}

// recorded is the JSON shape under PayloadsField; bin/second.js reads it.
type recorded struct {
	Name           string `json:"name"`
	ManifestSHA256 string `json:"manifestSha256"`
}

// files copied from the template: the script and its documentation only,
// never the tests or anything else lying around in packaging/npm.
var files = []struct {
	rel      string
	mode     fs.FileMode
	required bool
}{
	{"bin/second.js", 0o755, true},
	{"README.md", 0o644, false},
	{"LICENSE", 0o644, false},
}

// dependency fields a zero-dependency launcher must not declare.
var dependencyFields = []string{"dependencies", "optionalDependencies", "peerDependencies", "bundleDependencies", "bundledDependencies"}

// Assemble writes the launcher package into o.Dir. On failure the staging
// dir is removed.
func Assemble(ctx context.Context, o Options) (err error) {
	if err := o.validate(); err != nil {
		return fmt.Errorf("assemble launcher %s: %w", o.Name, err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("assemble launcher %s: %w", o.Name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(o.Dir)
			err = fmt.Errorf("assemble launcher %s@%s: %w", o.Name, o.Version, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	var copied []string
	for _, f := range files {
		src := filepath.Join(o.TemplateDir, filepath.FromSlash(f.rel))
		b, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) && !f.required {
			continue
		}
		if err != nil {
			return fmt.Errorf("read launcher template: %w", err)
		}
		dst := filepath.Join(o.Dir, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(dst, f.mode); err != nil { // not subject to the umask
			return err
		}
		copied = append(copied, f.rel)
	}
	pj, err := o.packageJSON(copied)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "package.json"), pj, 0o644); err != nil {
		return err
	}
	if err := secretscan.Scan(o.Dir); err != nil {
		return err
	}
	if !o.SourceDateEpoch.IsZero() {
		return filepath.WalkDir(o.Dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Chtimes(p, o.SourceDateEpoch, o.SourceDateEpoch)
		})
	}
	return nil
}

func (o *Options) validate() error {
	var problems []string
	if o.Name == "" {
		problems = append(problems, "Name is empty")
	}
	if o.Version == "" {
		problems = append(problems, "Version is empty")
	}
	if o.Dir == "" {
		problems = append(problems, "Dir (staging dir) is empty")
	} else if ents, err := os.ReadDir(o.Dir); err == nil && len(ents) > 0 {
		problems = append(problems, fmt.Sprintf("staging dir %s is not empty: remove it first", o.Dir))
	}
	if len(o.Payloads) == 0 {
		problems = append(problems, "no payloads: build at least one platform's payload first")
	}
	seen := map[string]bool{}
	for _, p := range o.Payloads {
		if _, err := platform.Parse(p.Platform); err != nil {
			problems = append(problems, "payload "+p.Name+": "+err.Error())
		}
		if seen[p.Platform] {
			problems = append(problems, "two payloads for "+p.Platform)
		}
		seen[p.Platform] = true
		if p.Name == "" {
			problems = append(problems, "payload for "+p.Platform+" has no name")
		}
		if b, err := hex.DecodeString(p.ManifestSHA256); err != nil || len(b) != 32 || strings.ToLower(p.ManifestSHA256) != p.ManifestSHA256 {
			problems = append(problems, fmt.Sprintf("payload %s: manifest sha256 %q is not 64 lowercase hex digits", p.Name, p.ManifestSHA256))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (o *Options) packageJSON(copied []string) ([]byte, error) {
	p, err := pack.ReadPackageJSON(filepath.Join(o.TemplateDir, "package.json"))
	if err != nil {
		return nil, err
	}
	for _, field := range dependencyFields {
		var v any
		if ok, err := p.Get(field, &v); err != nil {
			return nil, fmt.Errorf("launcher template package.json field %q: %w", field, err)
		} else if ok && !empty(v) {
			return nil, fmt.Errorf("launcher template package.json declares %q: the launcher must have zero dependencies (it runs before anything else is installed)", field)
		}
		p.Delete(field)
	}
	// Development-only fields have no business in the published package.
	p.Delete("scripts")
	p.Delete("devDependencies")

	payloads := make(map[string]recorded, len(o.Payloads)) // encoding/json sorts map keys
	for _, pl := range o.Payloads {
		payloads[pl.Platform] = recorded{Name: pl.Name, ManifestSHA256: pl.ManifestSHA256}
	}
	fileList := []string{"bin/"}
	for _, c := range copied {
		if !strings.HasPrefix(c, "bin/") {
			fileList = append(fileList, c)
		}
	}
	sort.Strings(fileList[1:])
	for _, f := range []struct {
		key string
		v   any
	}{
		{"name", o.Name},
		{"version", o.Version},
		{"bin", map[string]string{"second": "bin/second.js"}},
		{"files", fileList},
		{PayloadsField, payloads},
	} {
		if err := p.Set(f.key, f.v); err != nil {
			return nil, err
		}
	}
	var engines map[string]string
	if ok, _ := p.Get("engines", &engines); !ok || engines["node"] == "" {
		if err := p.Set("engines", map[string]string{"node": ">=20"}); err != nil {
			return nil, err
		}
	}
	return p.Marshal()
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case bool:
		return !x
	}
	return false
}
