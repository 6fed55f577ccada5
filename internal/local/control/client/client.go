// Package client is the control server's wire format and its client: the
// non-secret local-control.json, the JSON bodies of each route (GET /status
// answers internal/local/runstatus.Status, the type `second status --json`
// prints), and a Client that reads the file and the token and calls the
// server on loopback. Both the server (internal/local/control) and its callers
// (`second status|stop`, internal/local/update) use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/runstatus"
)

// Info is local-control.json: how to reach the server. It never holds the
// token, only where the token file is.
type Info struct {
	URL         string `json:"url"`
	Port        int    `json:"port"`
	PID         int    `json:"pid"`
	Version     string `json:"version"`
	PackageName string `json:"packageName"`
	TokenPath   string `json:"tokenPath"`
}

// ReadInfo reads local-control.json.
func ReadInfo(path string) (*Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read control file %s: %w", path, err)
	}
	var i Info
	if err := json.Unmarshal(b, &i); err != nil {
		return nil, fmt.Errorf("parse control file %s: %w", path, err)
	}
	if i.URL == "" {
		return nil, fmt.Errorf("control file %s has no url", path)
	}
	return &i, nil
}

// Health is GET /health: nothing secret, no token needed.
type Health struct {
	OK       bool          `json:"ok"`
	Version  string        `json:"version"`
	Services []HealthEntry `json:"services"`
}

// HealthEntry is a service's name and state, all /health reveals.
type HealthEntry struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// ErrorBody is every refusal's body: a short code, nothing else.
type ErrorBody struct {
	Error string `json:"error"`
}

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Status int
	Code   string // the body's "error", when present
	Body   []byte // the raw body (JSON), e.g. the running install on 409
}

func (e *HTTPError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("control server answered HTTP %d: %s", e.Status, e.Code)
	}
	return fmt.Sprintf("control server answered HTTP %d", e.Status)
}

// Client talks to one control server.
type Client struct {
	Info  Info
	Token string
	// HTTP defaults to a client with a 10 s timeout that ignores proxies
	// (loopback must never go through one).
	HTTP *http.Client
}

// Open reads local-control.json from the layout and the token:
// $SECOND_LOCAL_CLI_TOKEN when set (it overrides the file for the server
// too), else the token file the control file names (the layout's own when
// it names none). It refuses a control file whose URL is not loopback, so
// the token never leaves the machine.
func Open(l home.Layout) (*Client, error) {
	info, err := ReadInfo(l.ControlFile())
	if err != nil {
		return nil, err
	}
	if !IsLoopbackURL(info.URL) {
		return nil, fmt.Errorf("control file %s: url %q is not a loopback http URL; refusing to send the token there", l.ControlFile(), info.URL)
	}
	if tok := strings.TrimSpace(os.Getenv("SECOND_LOCAL_CLI_TOKEN")); tok != "" {
		return &Client{Info: *info, Token: tok}, nil
	}
	tp := info.TokenPath
	if tp == "" {
		tp = l.Secret(home.SecretControlToken)
	}
	b, err := os.ReadFile(tp)
	if err != nil {
		return nil, fmt.Errorf("read control token %s: %w", tp, err)
	}
	return &Client{Info: *info, Token: strings.TrimSpace(string(b))}, nil
}

// IsLoopbackURL reports whether u is http://127.0.0.1:<port>,
// http://localhost:<port> or http://[::1]:<port>.
func IsLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" || p.User != nil || p.Port() == "" {
		return false
	}
	switch p.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
}

// Health calls GET /health (no token).
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.do(ctx, http.MethodGet, "/health", nil, false, &h)
}

// Status calls GET /status.
func (c *Client) Status(ctx context.Context) (*runstatus.Status, error) {
	var s runstatus.Status
	return &s, c.Call(ctx, http.MethodGet, "/status", nil, &s)
}

// Stop calls POST /stop; the server answers before it stops.
func (c *Client) Stop(ctx context.Context) error {
	return c.Call(ctx, http.MethodPost, "/stop", nil, nil)
}

// Call sends one authenticated request: body (unless nil) as JSON, the
// answer's JSON into into. A non-2xx answer is an *HTTPError whose Body
// still holds the answer (POST /update/install's state on 409).
func (c *Client) Call(ctx context.Context, method, path string, body, into any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode the request: %w", method, path, err)
		}
	}
	return c.do(ctx, method, path, b, true, into)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, auth bool, into any) error {
	if !IsLoopbackURL(c.Info.URL) {
		return fmt.Errorf("control server url %q is not a loopback http URL", c.Info.URL)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Info.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s %s on the control server: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s on the control server: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		he := &HTTPError{Status: resp.StatusCode, Body: b}
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil {
			he.Code = eb.Error
		}
		return he
	}
	if into != nil && len(b) > 0 {
		if err := json.Unmarshal(b, into); err != nil {
			return fmt.Errorf("%s %s on the control server: invalid JSON: %w", method, path, err)
		}
	}
	return nil
}
