// Package verdaccio runs a private Verdaccio npm registry on loopback for the
// rehearsal and the tests: the release scope is readable and publishable only
// by authenticated users, nothing is proxied, storage lives in one directory.
package verdaccio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure Start.
type Options struct {
	// Dir holds config.yaml, htpasswd, storage/ and verdaccio.log. Required.
	Dir string
	// Bin is the verdaccio executable; empty: FindBin(""),
	// i.e. .tools/npm/node_modules/.bin/verdaccio above the working directory, then $PATH.
	Bin string
	// Scope is the restricted npm scope, default "@second-inc".
	Scope string
	// Port to listen on; 0 picks a free loopback port.
	Port int
	// Log receives progress; nil discards.
	Log *slog.Logger
	// ReadyTimeout bounds the wait for /-/ping, default 60s.
	ReadyTimeout time.Duration
}

// Server is a running Verdaccio.
type Server struct {
	// URL is the registry URL with a trailing slash, e.g. http://127.0.0.1:4873/.
	URL string
	// Dir is the state directory (Options.Dir).
	Dir string
	// LogFile is Verdaccio's own output.
	LogFile string
	// Scope is the restricted scope (Options.Scope).
	Scope string

	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
	waitErr  error
}

// FindBin locates the verdaccio executable scripts/setup installs: walking up
// from start (the working directory when empty) for
// .tools/npm/node_modules/.bin/verdaccio, then $PATH.
func FindBin(start string) (string, error) {
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		start = wd
	}
	for dir := start; ; {
		p := filepath.Join(dir, ".tools", "npm", "node_modules", ".bin", "verdaccio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath("verdaccio"); err == nil {
		return p, nil
	}
	return "", errors.New("verdaccio not found in .tools/npm/node_modules/.bin or on $PATH: run scripts/setup")
}

// Config renders config.yaml for a registry storing under dir and listening on addr.
func Config(dir, scope, addr string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are valid YAML
	return fmt.Sprintf(`# Written by internal/release/verdaccio: a private, offline registry.
storage: %s
auth:
  htpasswd:
    file: %s
    max_users: 1000
# No uplinks: nothing is ever fetched from the public registry.
uplinks: {}
packages:
  %s:
    access: $authenticated
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $authenticated
    publish: $authenticated
    unpublish: $authenticated
listen: %s
max_body_size: 1024mb
web:
  enable: false
log: { type: stdout, format: pretty, level: warn }
`, q(filepath.Join(dir, "storage")), q(filepath.Join(dir, "htpasswd")), q(scope+"/*"), q(addr))
}

// Start writes the config and starts Verdaccio, returning once /-/ping answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("verdaccio: Options.Dir is required")
	}
	if opts.Scope == "" {
		opts.Scope = "@second-inc"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	if opts.Bin == "" {
		bin, err := FindBin("")
		if err != nil {
			return nil, err
		}
		opts.Bin = bin
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
		return nil, fmt.Errorf("verdaccio: create %s: %w", dir, err)
	}
	// A free port can be taken between probing and listening; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, opts, dir, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if opts.Port != 0 || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, opts Options, dir string, port int) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(Config(dir, opts.Scope, addr)), 0o600); err != nil {
		return nil, fmt.Errorf("verdaccio: write %s: %w", cfg, err)
	}
	logPath := filepath.Join(dir, "verdaccio.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not CommandContext: the server must outlive a cancelled start context when
	// the caller keeps it (rehearse --keep); Stop ends it.
	cmd := exec.Command(opts.Bin, "--config", cfg, "--listen", addr)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "VERDACCIO_APPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("verdaccio: start %s: %w", opts.Bin, err)
	}
	s := &Server{URL: "http://" + addr + "/", Dir: dir, LogFile: logPath, Scope: opts.Scope, cmd: cmd, done: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	opts.Log.Debug("verdaccio starting", "pid", cmd.Process.Pid, "url", s.URL, "log", logPath)
	if err := s.waitReady(ctx, opts.ReadyTimeout); err != nil {
		s.Stop()
		return nil, err
	}
	opts.Log.Info("verdaccio ready", "url", s.URL, "dir", dir)
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"-/ping", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("verdaccio exited before it was ready (%v); its log %s ends:\n%s", s.waitErr, s.LogFile, tail(s.LogFile, 2000))
		case <-ctx.Done():
			return fmt.Errorf("verdaccio: waiting for %s-/ping: %w", s.URL, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("verdaccio did not answer %s-/ping within %s; log %s:\n%s", s.URL, timeout, s.LogFile, tail(s.LogFile, 2000))
		}
	}
}

// Pid is the server's process id (the process group leader).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop ends the server's whole process group: SIGTERM, then SIGKILL after 5s.
// Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.done
		}
		// Children that ignored SIGTERM after the leader exited.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// AddUser creates a user through the CouchDB user endpoint npm's adduser uses
// and returns its bearer token.
func (s *Server) AddUser(ctx context.Context, name, password string) (string, error) {
	return AddUser(ctx, s.URL, name, password)
}

// AddUser creates (or logs in) a user on any npm registry at registryURL and
// returns the token it issues.
func AddUser(ctx context.Context, registryURL, name, password string) (string, error) {
	body, _ := json.Marshal(map[string]any{
		"_id": "org.couchdb.user:" + name, "name": name, "password": password,
		"type": "user", "roles": []string{}, "date": time.Now().UTC().Format(time.RFC3339),
	})
	u := strings.TrimSuffix(registryURL, "/") + "/-/user/org.couchdb.user:" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("add npm user %q at %s: %w", name, registryURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("add npm user %q at %s: HTTP %d: %s", name, registryURL, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("add npm user %q at %s: no token in the answer", name, registryURL)
	}
	return out.Token, nil
}

// WriteNpmrcFor writes an .npmrc (mode 0600) pointing npm at registryURL with
// token as its auth. scope, when set, also routes that scope to the registry.
func WriteNpmrcFor(path, registryURL, token, scope string) error {
	return writeNpmrc(path, registryURL, token, scope, true)
}

// WriteScopedNpmrc writes an .npmrc (mode 0600) that routes only scope to
// registryURL, with token as its auth there; every other package still comes
// from npm's default registry. This is the file to hand a user: a build run
// with it still resolves public packages.
func WriteScopedNpmrc(path, registryURL, token, scope string) error {
	if scope == "" {
		return fmt.Errorf("write %s: a scoped .npmrc needs a scope", path)
	}
	return writeNpmrc(path, registryURL, token, scope, false)
}

func writeNpmrc(path, registryURL, token, scope string, defaultRegistry bool) error {
	u, err := url.Parse(registryURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("write %s: bad registry URL %q", path, registryURL)
	}
	reg := strings.TrimSuffix(registryURL, "/") + "/"
	// npm matches auth by the URL without scheme: //host[/path]/:_authToken.
	key := "//" + u.Host + strings.TrimSuffix(u.Path, "/") + "/:_authToken"
	var b strings.Builder
	if defaultRegistry {
		fmt.Fprintf(&b, "registry=%s\n", reg)
	}
	if scope != "" {
		fmt.Fprintf(&b, "%s:registry=%s\n", scope, reg)
	}
	if token != "" {
		fmt.Fprintf(&b, "%s=%s\n", key, token)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// WriteNpmrc writes an .npmrc (0600) for this server: registry, the scope's
// registry and the token (none when token is empty: an anonymous client).
func (s *Server) WriteNpmrc(path, token string) error {
	return WriteNpmrcFor(path, s.URL, token, s.Scope)
}

// WriteScopedNpmrc writes a user's .npmrc (0600) for this server: only the
// scope comes from it (see WriteScopedNpmrc).
func (s *Server) WriteScopedNpmrc(path, token string) error {
	return WriteScopedNpmrc(path, s.URL, token, s.Scope)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
