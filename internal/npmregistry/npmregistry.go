// Package npmregistry is a small read-only client for the npm registry API:
// packuments, dist-tags and one version's integrity and tarball, with the
// registry and credentials chosen from the user's npm configuration. Errors
// carry short codes and never a token or URL credentials.
package npmregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
)

// Code classifies a registry failure; it is safe to show to users and to
// put in JSON.
type Code string

const (
	CodeAuthRequired Code = "auth_required" // 401: no or rejected credentials
	CodeForbidden    Code = "forbidden"     // 403: credentials lack access
	CodeNotFound     Code = "not_found"     // 404: no such package (or hidden from us)
	CodeUnreachable  Code = "unreachable"   // network error or timeout
	CodeBadResponse  Code = "bad_response"  // 5xx, unexpected status or unparsable body
)

// Error is a registry failure for one package.
type Error struct {
	Code    Code
	Package string
	Status  int    // HTTP status, 0 when none was received
	detail  string // already redacted
	cause   error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("npm registry: %s %s", e.Code, e.Package)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.cause }

// CodeOf returns the Code of a registry error, or "" for other errors.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Dist is the "dist" object of one version.
type Dist struct {
	Integrity string `json:"integrity"`
	Shasum    string `json:"shasum"`
	Tarball   string `json:"tarball"`
}

// VersionMeta is the part of a version's manifest this client reads.
type VersionMeta struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Dist    Dist            `json:"dist"`
	Bin     json.RawMessage `json:"bin,omitempty"`
	OS      []string        `json:"os,omitempty"`
	CPU     []string        `json:"cpu,omitempty"`
}

// Packument is a package document (abbreviated form when the registry offers it).
type Packument struct {
	Name     string                 `json:"name"`
	DistTags map[string]string      `json:"dist-tags"`
	Versions map[string]VersionMeta `json:"versions"`
}

// Client reads from the registry the npm config assigns to each package.
type Client struct {
	// Config chooses registry and credentials; nil means npm's defaults
	// without credentials.
	Config *npmconf.Config
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
	// Registry, when set, overrides the configured registry for every package.
	Registry string
	// Anonymous sends no credentials even when the config has some (to
	// check what the public can see).
	Anonymous bool
}

// maxBody bounds a packument read; large public packuments are a few MB.
const maxBody = 64 << 20

// RegistryFor is the registry URL (ending in "/") used for pkg.
func (c *Client) RegistryFor(pkg string) string {
	if c.Registry != "" {
		if strings.HasSuffix(c.Registry, "/") {
			return c.Registry
		}
		return c.Registry + "/"
	}
	if c.Config == nil {
		return npmconf.DefaultRegistry
	}
	return c.Config.RegistryFor(pkg)
}

// PackageURL is the packument URL of pkg (scoped names escaped as npm does).
func (c *Client) PackageURL(pkg string) string {
	return c.RegistryFor(pkg) + EscapeName(pkg)
}

// EscapeName escapes a package name for a registry URL: "@scope/name" becomes
// "@scope%2fname".
func EscapeName(pkg string) string {
	if strings.HasPrefix(pkg, "@") {
		if i := strings.IndexByte(pkg, '/'); i > 0 {
			return pkg[:i] + "%2f" + url.PathEscape(pkg[i+1:])
		}
	}
	return url.PathEscape(pkg)
}

// Packument fetches the package document of pkg.
func (c *Client) Packument(ctx context.Context, pkg string) (*Packument, error) {
	var p Packument
	if err := c.getJSON(ctx, pkg, c.PackageURL(pkg), &p); err != nil {
		return nil, err
	}
	if p.DistTags == nil {
		p.DistTags = map[string]string{}
	}
	return &p, nil
}

// DistTags returns the package's dist-tags (tag -> version).
func (c *Client) DistTags(ctx context.Context, pkg string) (map[string]string, error) {
	p, err := c.Packument(ctx, pkg)
	if err != nil {
		return nil, err
	}
	return p.DistTags, nil
}

// Version reports whether pkg@version is published and, if so, its sha512
// integrity and tarball URL. A missing package is not an error: exists is false.
func (c *Client) Version(ctx context.Context, pkg, version string) (integrity, tarball string, exists bool, err error) {
	p, err := c.Packument(ctx, pkg)
	if CodeOf(err) == CodeNotFound {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	v, ok := p.Versions[version]
	if !ok {
		return "", "", false, nil
	}
	return v.Dist.Integrity, v.Dist.Tarball, true, nil
}

func (c *Client) getJSON(ctx context.Context, pkg, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &Error{Code: CodeBadResponse, Package: pkg, detail: "invalid registry URL " + c.redact(u)}
	}
	// The abbreviated ("corgi") document is what npm install reads; it is
	// much smaller and has everything this client needs.
	req.Header.Set("Accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
	req.Header.Set("User-Agent", "second-release npmregistry")
	if !c.Anonymous && c.Config != nil {
		if h, ok := c.Config.AuthHeader(u); ok {
			req.Header.Set("Authorization", h)
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		cause := err
		if errors.As(err, &ue) {
			cause = ue.Err // drop the URL, which may carry credentials
		}
		return &Error{Code: CodeUnreachable, Package: pkg, detail: c.redact(cause.Error()), cause: cause}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized:
		return &Error{Code: CodeAuthRequired, Package: pkg, Status: resp.StatusCode}
	case resp.StatusCode == http.StatusForbidden:
		return &Error{Code: CodeForbidden, Package: pkg, Status: resp.StatusCode}
	case resp.StatusCode == http.StatusNotFound:
		return &Error{Code: CodeNotFound, Package: pkg, Status: resp.StatusCode}
	default:
		return &Error{Code: CodeBadResponse, Package: pkg, Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return &Error{Code: CodeUnreachable, Package: pkg, Status: resp.StatusCode, detail: "reading body: " + c.redact(err.Error()), cause: err}
	}
	if len(body) > maxBody {
		return &Error{Code: CodeBadResponse, Package: pkg, Status: resp.StatusCode, detail: "package document larger than 64 MiB"}
	}
	if err := json.Unmarshal(body, into); err != nil {
		return &Error{Code: CodeBadResponse, Package: pkg, Status: resp.StatusCode, detail: "invalid JSON: " + err.Error(), cause: err}
	}
	return nil
}

func (c *Client) redact(s string) string {
	if c.Config == nil {
		return npmconf.Redact(s)
	}
	return c.Config.Redact(s)
}
