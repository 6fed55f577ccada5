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

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
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

// HTTPRegistry is a Registry over HTTP that authenticates as npm would for
// URL (from Config); package documents come through internal/npmregistry.
type HTTPRegistry struct {
	URL    string          // with trailing slash
	Config *npmconf.Config // credentials; nil: anonymous
	HTTP   *http.Client
}

func (r *HTTPRegistry) client() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// ErrUnauthorized is returned when the registry refuses the credentials.
var ErrUnauthorized = errors.New("registry refused the credentials (HTTP 401/403)")

func (r *HTTPRegistry) get(ctx context.Context, path string, v any) (int, error) {
	u := strings.TrimSuffix(r.URL, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if r.Config != nil {
		if h, ok := r.Config.AuthHeader(u); ok {
			req.Header.Set("Authorization", h)
		}
	}
	resp, err := r.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || v == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
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
	// Some registries answer ping with 404 or 401; any answer below 500 means reachable.
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
	c := &npmregistry.Client{Config: r.Config, Registry: r.URL, HTTP: r.HTTP}
	doc, err := c.Packument(ctx, name)
	switch npmregistry.CodeOf(err) {
	case "":
	case npmregistry.CodeNotFound:
		return nil, nil
	case npmregistry.CodeAuthRequired, npmregistry.CodeForbidden:
		return nil, fmt.Errorf("read %s from %s: %w", name, r.URL, ErrUnauthorized)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", name, r.URL, err)
	}
	info := &PackageInfo{Versions: map[string]string{}, DistTags: doc.DistTags}
	for v, m := range doc.Versions {
		info.Versions[v] = m.Dist.Integrity
	}
	return info, nil
}
