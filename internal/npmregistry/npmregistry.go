// Package npmregistry is a small read-only client for the npm registry API:
// ping, whoami, packuments, dist-tags and one version's integrity and
// tarball, with the registry and credentials chosen from the user's npm
// configuration. Errors carry short codes and never a token or URL
// credentials.
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

// Error is a registry failure for one package or one registry endpoint.
type Error struct {
	Code     Code
	Package  string
	Endpoint string // "-/ping", "-/whoami": set instead of Package
	Status   int    // HTTP status, 0 when none was received
	detail   string // already redacted
	cause    error
}

func (e *Error) Error() string {
	subject := e.Package
	if subject == "" && e.Endpoint != "" {
		subject = "GET " + e.Endpoint
	}
	s := fmt.Sprintf("npm registry: %s %s", e.Code, subject)
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
	if err := c.getJSON(ctx, Error{Package: pkg}, c.PackageURL(pkg), &p); err != nil {
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

// Ping fails when the registry (Registry, else the configured default) cannot
// be reached. Any answer below 500 counts as reachable: some registries
// answer -/ping with 404 or 401.
func (c *Client) Ping(ctx context.Context) error {
	at := Error{Endpoint: "-/ping"}
	resp, err := c.send(ctx, at, c.RegistryFor("")+"-/ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 500 {
		return at.with(CodeBadResponse, resp.StatusCode, "", nil)
	}
	return nil
}

// Whoami is the user the registry (Registry, else the configured default)
// authenticates our credentials as. It is "" when the registry answers for
// an anonymous client: Verdaccio says 200 with "{}" rather than 401. A
// refusal is an *Error with CodeAuthRequired or CodeForbidden.
func (c *Client) Whoami(ctx context.Context) (string, error) {
	var out struct {
		Username string `json:"username"`
	}
	if err := c.getJSON(ctx, Error{Endpoint: "-/whoami"}, c.RegistryFor("")+"-/whoami", &out); err != nil {
		return "", err
	}
	return out.Username, nil
}

// PackageInfo is what publishing needs of a packument.
type PackageInfo struct {
	// Versions maps each published version to its dist.integrity.
	Versions map[string]string
	DistTags map[string]string
}

// Package returns pkg's versions (with their integrity) and dist-tags; nil,
// nil when the registry does not know pkg. Errors name the package and the
// registry and keep their Code.
func (c *Client) Package(ctx context.Context, pkg string) (*PackageInfo, error) {
	doc, err := c.Packument(ctx, pkg)
	if CodeOf(err) == CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", pkg, c.redact(c.RegistryFor(pkg)), err)
	}
	info := &PackageInfo{Versions: make(map[string]string, len(doc.Versions)), DistTags: doc.DistTags}
	for v, m := range doc.Versions {
		info.Versions[v] = m.Dist.Integrity
	}
	return info, nil
}

// with is a copy of the error template e with the failure filled in.
func (e Error) with(code Code, status int, detail string, cause error) *Error {
	e.Code, e.Status, e.detail, e.cause = code, status, detail, cause
	return &e
}

// send GETs u with the credentials npm would use; at names what is being
// read in errors.
func (c *Client) send(ctx context.Context, at Error, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, at.with(CodeBadResponse, 0, "invalid registry URL "+c.redact(u), nil)
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
		return nil, at.with(CodeUnreachable, 0, c.redact(cause.Error()), cause)
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, at Error, u string, into any) error {
	resp, err := c.send(ctx, at, u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized:
		return at.with(CodeAuthRequired, resp.StatusCode, "", nil)
	case resp.StatusCode == http.StatusForbidden:
		return at.with(CodeForbidden, resp.StatusCode, "", nil)
	case resp.StatusCode == http.StatusNotFound:
		return at.with(CodeNotFound, resp.StatusCode, "", nil)
	default:
		return at.with(CodeBadResponse, resp.StatusCode, "", nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return at.with(CodeUnreachable, resp.StatusCode, "reading body: "+c.redact(err.Error()), err)
	}
	if len(body) > maxBody {
		return at.with(CodeBadResponse, resp.StatusCode, "document larger than 64 MiB", nil)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return at.with(CodeBadResponse, resp.StatusCode, "invalid JSON: "+err.Error(), err)
	}
	return nil
}

func (c *Client) redact(s string) string {
	if c.Config == nil {
		return npmconf.Redact(s)
	}
	return c.Config.Redact(s)
}
