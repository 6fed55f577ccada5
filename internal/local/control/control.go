// Package control is the runtime's local control server: a
// loopback HTTP API for the web app and the CLI — health, status, release
// status, self-update and stop — safe against the requests any web page can
// send to loopback (DNS rebinding, cross-site POSTs) and against local
// callers without the token.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/local/updatecheck"
)

// Wire types, shared with callers through internal/local/control/client and
// internal/local/runstatus.
type (
	Client = client.Client
	Info   = client.Info
	Health = client.Health
)

// Runtime is what the server needs from the running runtime.
type Runtime interface {
	// Snapshot reports the runtime's phase, web URL and services.
	Snapshot() Snapshot
	// Stop asks the runtime to stop everything; it must not block on the
	// control server (which is stopped as part of that).
	Stop(ctx context.Context) error
}

// Snapshot is the runtime's state at one moment.
type Snapshot struct {
	Phase     string // starting, running, stopping
	URL       string // the web app's URL
	StartedAt time.Time
	Services  []runstatus.Service
}

// ReleaseChecker answers GET /release/status; *updatecheck.Checker is one.
type ReleaseChecker interface {
	Status(ctx context.Context) updatecheck.Status
}

// Updater runs POST /update/install; *update.Installer is one.
type Updater interface {
	Install(version string) (update.State, bool, error)
	State() update.State
}

// Options configure Start.
type Options struct {
	Layout      home.Layout
	Runtime     Runtime
	Version     string
	PackageName string
	// Token is the bearer token; empty means the one internal/local/secrets keeps
	// in secrets/local-control-token (created once, 0600).
	Token string
	// Release and Updater are optional; without them the routes answer 503.
	Release ReleaseChecker
	Updater Updater
	Log     *slog.Logger
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
}

// Server is a running control server.
type Server struct {
	opts      Options
	srv       *http.Server
	ln        net.Listener
	port      int
	url       string
	tokenHash [32]byte
	started   time.Time
	served    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start listens on a free 127.0.0.1 port, writes local-control.json (0644,
// no secret in it) and serves until Close or ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Runtime == nil {
		return nil, errors.New("control: Options.Runtime is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	if opts.Token == "" {
		set, err := secrets.Ensure(secrets.Options{Layout: opts.Layout})
		if err != nil {
			return nil, fmt.Errorf("control server token: %w", err)
		}
		opts.Token = set.ControlToken
	}
	if len(opts.Token) < 32 {
		return nil, errors.New("control server token is shorter than 32 characters: delete secrets/local-control-token to have it recreated")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("control server: listen on 127.0.0.1: %w", err)
	}
	s := &Server{
		opts:      opts,
		ln:        ln,
		port:      ln.Addr().(*net.TCPAddr).Port,
		tokenHash: hashToken(opts.Token),
		started:   time.Now().UTC(),
		served:    make(chan struct{}),
	}
	s.url = "http://127.0.0.1:" + strconv.Itoa(s.port)
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if err := s.writeInfo(); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Log.Error("control server stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Close(sctx)
		case <-s.served:
		}
	}()
	opts.Log.Info("control server listening", "url", s.url)
	return s, nil
}

// URL is the server's base URL (http://127.0.0.1:<port>).
func (s *Server) URL() string { return s.url }

// Info is what local-control.json holds.
func (s *Server) Info() Info {
	return Info{
		URL: s.url, Port: s.port, PID: os.Getpid(), Version: s.opts.Version,
		PackageName: s.opts.PackageName, TokenPath: s.opts.Layout.Secret(home.SecretControlToken),
	}
}

// Close stops serving (in-flight requests get until ctx ends) and removes
// local-control.json if it is still ours.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			s.srv.Close()
		}
		s.removeInfo()
		s.closeErr = err
	})
	return s.closeErr
}

func (s *Server) writeInfo() error {
	b, err := json.MarshalIndent(s.Info(), "", "  ")
	if err != nil {
		return err
	}
	path := s.opts.Layout.ControlFile()
	if err := os.MkdirAll(s.opts.Layout.Root, 0o700); err != nil {
		return fmt.Errorf("write control file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(s.opts.Layout.Root, ".local-control.json.tmp-*")
	if err != nil {
		return fmt.Errorf("write control file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		return fmt.Errorf("write control file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write control file %s: %w", path, err)
	}
	return nil
}

// removeInfo removes local-control.json unless another runtime (a newer
// version after an update) has replaced it.
func (s *Server) removeInfo() {
	path := s.opts.Layout.ControlFile()
	info, err := client.ReadInfo(path)
	if err != nil || info.PID != os.Getpid() || info.Port != s.port {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.opts.Log.Warn("remove control file", "path", path, "err", err)
	}
}
