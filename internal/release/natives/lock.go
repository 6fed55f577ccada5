// Package natives puts pinned mongod, redis-server and OpenSSL into a
// payload's dist/runtime from the per-platform lock file
// packaging/<platform>/natives.lock.json: fetch (progress, cache keyed by
// sha256, verification, retries, an air-gap mirror), extract the listed
// members, check the binaries, and report versions and digests for the
// manifest. Builds only ever use what the lock pins; Update rewrites it.
package natives

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/second-inc/second-release/internal/release/binarycheck"
)

// LockFileName is the lock's name inside packaging/<platform>/.
const LockFileName = "natives.lock.json"

// LockPath is where a platform's lock lives under the repository root.
func LockPath(repoRoot, platformID string) string {
	return filepath.Join(repoRoot, "packaging", platformID, LockFileName)
}

// Lock pins every native runtime of one platform.
type Lock struct {
	Schema   int    `json:"schema"`
	Platform string `json:"platform"`
	// Floors are the oldest OS versions the payload must run on; the binary
	// check enforces them.
	Floors binarycheck.Floors `json:"floors"`
	// SystemLibraries are extra Linux sonames the target OS must provide
	// (documented requirements, beyond glibc and the C/C++ runtime).
	SystemLibraries []string `json:"systemLibraries,omitempty"`
	Natives         []Native `json:"natives"`
}

// Native is one pinned archive and what to take out of it.
type Native struct {
	// Name is the manifest key: mongod, redis or openssl.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source is an https URL, or oci://<registry>/<repository>@sha256:<hex>
	// for an OCI blob (Homebrew bottles live on ghcr.io this way).
	Source string `json:"source"`
	// SHA256 is the hex digest of the archive bytes.
	SHA256 string `json:"sha256"`
	// Members maps archive member paths to paths under dist/runtime
	// (bin/... or lib/...).
	Members map[string]string `json:"members"`
	// PinSource says where the digest was published, so a reviewer can
	// check it without downloading anything.
	PinSource string `json:"pinSource"`
	// Track tells `release natives update` where newer pins are published
	// (see Update); empty: changed by hand only.
	Track string `json:"track,omitempty"`
	// Note records caveats (e.g. a pin that fails the binary check).
	Note string `json:"note,omitempty"`
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReadLock loads and validates a lock file.
func ReadLock(file string) (*Lock, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read natives lock: %w", err)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &l, nil
}

// Marshal renders the lock deterministically (2-space indent, trailing newline).
func (l *Lock) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Validate checks every field a build relies on and names the bad one.
func (l *Lock) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if l.Schema != 1 {
		bad("schema", "got %d, want 1", l.Schema)
	}
	if l.Platform == "" {
		bad("platform", "missing")
	}
	seenName := map[string]bool{}
	seenDest := map[string]string{}
	for i, n := range l.Natives {
		f := fmt.Sprintf("natives[%d]", i)
		if n.Name == "" {
			bad(f+".name", "missing")
		} else {
			f = fmt.Sprintf("natives[%d] (%s)", i, n.Name)
		}
		if seenName[n.Name] {
			bad(f+".name", "duplicate")
		}
		seenName[n.Name] = true
		if n.Version == "" || strings.EqualFold(n.Version, "latest") {
			bad(f+".version", "must be an exact version, got %q", n.Version)
		}
		if !hexDigest.MatchString(n.SHA256) {
			bad(f+".sha256", "must be 64 lowercase hex digits, got %q", n.SHA256)
		}
		if _, err := ParseSource(n.Source, n.SHA256); err != nil {
			bad(f+".source", "%v", err)
		}
		if n.PinSource == "" {
			bad(f+".pinSource", "missing: say where the digest was published")
		}
		if len(n.Members) == 0 {
			bad(f+".members", "empty")
		}
		for _, m := range sortedKeys(n.Members) {
			d := n.Members[m]
			clean := path.Clean(d)
			if clean != d || !(strings.HasPrefix(d, "bin/") || strings.HasPrefix(d, "lib/")) || strings.Contains(d, "..") {
				bad(f+".members["+m+"]", "destination %q must be a clean path under bin/ or lib/", d)
			}
			if prev, dup := seenDest[d]; dup {
				bad(f+".members["+m+"]", "destination %q is also written by %s", d, prev)
			}
			seenDest[d] = n.Name
		}
	}
	return errors.Join(errs...)
}

// Source is a parsed lock source.
type Source struct {
	URL string // http(s) URL, or "" for OCI
	// OCI blob: registry/repository and digest "sha256:<hex>".
	Repository string
	Digest     string
}

// ParseSource checks a source string. OCI sources must carry the lock's
// digest, so the pin and the fetch address cannot disagree. Plain http is
// accepted for loopback hosts only (tests and local mirrors).
func ParseSource(s, sha string) (Source, error) {
	if rest, ok := strings.CutPrefix(s, "oci://"); ok {
		repo, dig, ok := strings.Cut(rest, "@")
		if !ok || repo == "" || !strings.Contains(repo, "/") {
			return Source{}, fmt.Errorf("%q: want oci://<registry>/<repository>@sha256:<hex>", s)
		}
		if dig != "sha256:"+sha {
			return Source{}, fmt.Errorf("%q: digest does not match the sha256 field %s", s, sha)
		}
		return Source{Repository: repo, Digest: dig}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return Source{}, fmt.Errorf("%q: want an https URL or oci://… reference", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return Source{}, fmt.Errorf("%q: plain http is only allowed for loopback hosts; use https", s)
		}
	default:
		return Source{}, fmt.Errorf("%q: unsupported scheme %q", s, u.Scheme)
	}
	return Source{URL: s}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
