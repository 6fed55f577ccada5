// Package ociregistry starts a distribution/distribution registry
// (.tools/bin/registry) on a loopback port: the rehearsal's private registry
// and the tests' (through testsupport.StartRegistry).
package ociregistry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Registry is a registry on a loopback port: plain HTTP, storage in Dir.
type Registry struct {
	Host string // 127.0.0.1:<port>
	Dir  string
	Pid  int
	// Log is the registry's own log file (it outlives us when kept).
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// FindBin looks for the registry scripts/setup installs:
// <root>/.tools/bin/registry, then `registry` on $PATH.
func FindBin(root string) (string, error) {
	p := filepath.Join(root, ".tools", "bin", "registry")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	if p, err := exec.LookPath("registry"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no OCI registry binary at %s or on $PATH: run scripts/setup (it installs distribution v3)", p)
}

// Start runs bin with its storage under dir until Close.
func Start(ctx context.Context, bin, dir string) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	host := "127.0.0.1:" + strconv.Itoa(port)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	r := &Registry{Host: host, Dir: dir, Log: filepath.Join(dir, "registry.log"), done: make(chan struct{})}
	logf, err := os.Create(r.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none") // nothing collects traces here
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	// Its own process group: a kept registry survives our exit and stops
	// with `kill -- -<pid>`.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry %s: %w", bin, err)
	}
	r.Pid = r.cmd.Process.Pid
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("registry exited before serving on %s: %s", host, r.tail())
		case <-ctx.Done():
			r.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("registry did not answer on %s within 15s: %s", host, r.tail())
		}
	}
}

// Close stops the registry.
func (r *Registry) Close() error {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	select {
	case <-r.done:
		return nil
	default:
	}
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-r.done
	return nil
}

func (r *Registry) tail() string {
	b, _ := os.ReadFile(r.Log)
	if len(b) > 4096 {
		b = b[:4096]
	}
	return string(b)
}
