package publish

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
)

// Registry reads what an npm registry holds. The real one speaks HTTP with
// the user's npm auth; tests wrap it to watch or break it.
type Registry interface {
	// Ping fails when the registry cannot be reached.
	Ping(ctx context.Context) error
	// Whoami is the authenticated user's name; "" when the registry sees an
	// anonymous client.
	Whoami(ctx context.Context) (string, error)
	// Package returns the package's versions and dist-tags; nil, nil when the
	// registry does not know the package.
	Package(ctx context.Context, name string) (*PackageInfo, error)
}

// PackageInfo is the part of a packument publishing cares about.
type PackageInfo struct {
	// Versions maps each published version to its dist.integrity.
	Versions map[string]string
	DistTags map[string]string
}

// HTTPRegistry is a Registry over plain HTTP with an optional Authorization
// header value (what npm would send: "Bearer …" or "Basic …").
type HTTPRegistry struct {
	URL    string // with trailing slash
	Auth   string // Authorization header value; "" for anonymous
	Client *http.Client
}

func (r *HTTPRegistry) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// ErrUnauthorized is returned when the registry refuses the credentials.
var ErrUnauthorized = errors.New("registry refused the credentials (HTTP 401/403)")

func (r *HTTPRegistry) get(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.URL, "/")+"/"+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, nil
	}
	if v == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
	}
	return resp.StatusCode, nil
}

// Ping implements Registry.
func (r *HTTPRegistry) Ping(ctx context.Context) error {
	code, err := r.get(ctx, "-/ping", nil)
	if err != nil {
		return err
	}
	// Some registries answer ping with 404 or 401; any HTTP answer means reachable.
	if code >= 500 {
		return fmt.Errorf("GET -/ping: HTTP %d", code)
	}
	return nil
}

// Whoami implements Registry.
func (r *HTTPRegistry) Whoami(ctx context.Context) (string, error) {
	var out struct {
		Username string `json:"username"`
	}
	code, err := r.get(ctx, "-/whoami", &out)
	if err != nil {
		return "", err
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "", ErrUnauthorized
	case code != http.StatusOK:
		return "", fmt.Errorf("GET -/whoami: HTTP %d", code)
	}
	return out.Username, nil
}

// Package implements Registry.
func (r *HTTPRegistry) Package(ctx context.Context, name string) (*PackageInfo, error) {
	var doc struct {
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]struct {
			Dist struct {
				Integrity string `json:"integrity"`
				Shasum    string `json:"shasum"`
			} `json:"dist"`
		} `json:"versions"`
	}
	code, err := r.get(ctx, escapeName(name), &doc)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.URL, err)
	}
	switch code {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, fmt.Errorf("read %s from %s: %w", name, r.URL, ErrUnauthorized)
	default:
		return nil, fmt.Errorf("read %s from %s: HTTP %d", name, r.URL, code)
	}
	info := &PackageInfo{Versions: map[string]string{}, DistTags: doc.DistTags}
	if info.DistTags == nil {
		info.DistTags = map[string]string{}
	}
	for v, m := range doc.Versions {
		info.Versions[v] = m.Dist.Integrity
	}
	return info, nil
}

// escapeName is the packument path for a name: "@scope%2fname".
func escapeName(name string) string {
	return strings.Replace(url.PathEscape(name), "%40", "@", 1)
}
