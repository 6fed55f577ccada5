// Package updatecheck answers "is there a newer release of the launcher
// package?" for the control server's GET /release/status: it asks the
// registry the user's npm configuration points at, follows the dist-tag the
// running version came from, caches the answer and keeps one request in flight.
package updatecheck

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/npmregistry"
)

// DefaultPackage is the launcher package when SECOND_CLI_RELEASE_PACKAGE is unset.
const DefaultPackage = "@second-inc/cli"

// Error codes besides npmregistry's (auth_required, forbidden, not_found,
// unreachable, bad_response).
const (
	CodeNoDistTag      = "no_dist_tag"     // the tag to follow is missing
	CodeInvalidVersion = "invalid_version" // the registry's or our version is not semver
	CodeTimeout        = "timeout"         // the check took too long
	CodeInternal       = "internal"        // anything else
)

// PackageFromEnv is $SECOND_CLI_RELEASE_PACKAGE (set by the launcher) or DefaultPackage.
func PackageFromEnv(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv("SECOND_CLI_RELEASE_PACKAGE"); p != "" {
		return p
	}
	return DefaultPackage
}

// Status is the answer; Error is a short code, never a message with details.
type Status struct {
	Package         string    `json:"package"`
	Current         string    `json:"current"`
	Channel         string    `json:"channel"` // dist-tag followed: latest or next
	Newest          string    `json:"newest,omitempty"`
	UpdateAvailable bool      `json:"updateAvailable"`
	CheckedAt       time.Time `json:"checkedAt"`
	Error           string    `json:"error,omitempty"`
}

// Lookup reads a package's dist-tags; *npmregistry.Client is one.
type Lookup interface {
	DistTags(ctx context.Context, pkg string) (map[string]string, error)
}

// Options configure a Checker.
type Options struct {
	Package string // launcher package, default DefaultPackage
	Current string // the running version
	Lookup  Lookup
	// TTL is how long an answer is reused (default 60 s); ErrorTTL the same
	// for failed checks (default 10 s, so a fixed .npmrc shows soon).
	TTL, ErrorTTL time.Duration
	// Timeout bounds one registry check (default 15 s).
	Timeout time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Checker caches and deduplicates release checks. Safe for concurrent use.
type Checker struct {
	opts Options

	mu       sync.Mutex
	cached   *Status
	expires  time.Time
	inflight chan struct{} // closed when the running check finishes
}

// New returns a Checker.
func New(opts Options) *Checker {
	if opts.Package == "" {
		opts.Package = DefaultPackage
	}
	if opts.TTL == 0 {
		opts.TTL = 60 * time.Second
	}
	if opts.ErrorTTL == 0 {
		opts.ErrorTTL = 10 * time.Second
	}
	if opts.Timeout == 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Checker{opts: opts}
}

// Channel is the dist-tag a version is released under: "next" for
// prereleases, "latest" otherwise.
func Channel(version string) string {
	v, err := semver.NewVersion(version)
	if err == nil && v.Prerelease() != "" {
		return "next"
	}
	return "latest"
}

// Status returns the cached answer or checks the registry. Concurrent
// callers share one registry request.
func (c *Checker) Status(ctx context.Context) Status {
	for {
		c.mu.Lock()
		if c.cached != nil && c.opts.Now().Before(c.expires) {
			s := *c.cached
			c.mu.Unlock()
			return s
		}
		if wait := c.inflight; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return c.failed(CodeTimeout)
			}
		}
		done := make(chan struct{})
		c.inflight = done
		c.mu.Unlock()

		// The check is not tied to this caller's context: others may be waiting on it.
		s := c.check()
		c.mu.Lock()
		c.cached = &s
		ttl := c.opts.TTL
		if s.Error != "" {
			ttl = c.opts.ErrorTTL
		}
		c.expires = c.opts.Now().Add(ttl)
		c.inflight = nil
		close(done)
		c.mu.Unlock()
		return s
	}
}

// Invalidate drops the cached answer (after an update changes the version).
func (c *Checker) Invalidate() {
	c.mu.Lock()
	c.cached = nil
	c.mu.Unlock()
}

func (c *Checker) failed(code string) Status {
	return Status{Package: c.opts.Package, Current: c.opts.Current, Channel: Channel(c.opts.Current), CheckedAt: c.opts.Now().UTC(), Error: code}
}

func (c *Checker) check() Status {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	s := c.failed("")
	cur, err := semver.NewVersion(c.opts.Current)
	if err != nil {
		s.Error = CodeInvalidVersion
		return s
	}
	tags, err := c.opts.Lookup.DistTags(ctx, c.opts.Package)
	if err != nil {
		switch code := npmregistry.CodeOf(err); {
		case code != "":
			s.Error = string(code)
		case ctx.Err() != nil:
			s.Error = CodeTimeout
		default:
			s.Error = CodeInternal
		}
		return s
	}
	// A prerelease user follows "next" but also sees a newer stable release.
	candidates := []string{tags[s.Channel]}
	if s.Channel == "next" {
		candidates = append(candidates, tags["latest"])
	}
	var newest *semver.Version
	for _, raw := range candidates {
		if raw == "" {
			continue
		}
		v, err := semver.NewVersion(raw)
		if err != nil {
			s.Error = CodeInvalidVersion
			return s
		}
		if newest == nil || v.GreaterThan(newest) {
			newest = v
		}
	}
	if newest == nil {
		s.Error = CodeNoDistTag
		return s
	}
	s.Newest = newest.Original()
	s.UpdateAvailable = newest.GreaterThan(cur)
	return s
}
