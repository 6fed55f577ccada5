package verdaccio_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/verdaccio"
	"github.com/second-inc/second-release/internal/testsupport"
)

func TestStartAuthAndStop(t *testing.T) {
	bin := testsupport.Tool(t, "verdaccio")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := verdaccio.Start(ctx, verdaccio.Options{Dir: dir, Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q is not loopback", s.URL)
	}

	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	token, err := s.AddUser(ctx, "alice", "correct-horse-battery")
	if err != nil {
		t.Fatal(err)
	}
	if token == "" {
		t.Fatal("empty token")
	}
	if _, err := s.AddUser(ctx, "alice", "wrong-password"); err == nil {
		t.Fatal("AddUser with the wrong password for an existing user succeeded")
	}

	tests := []struct {
		name, path, token string
		want              int
		body              string // substring of the answer
	}{
		// Verdaccio answers an anonymous whoami with 200 {}: no username.
		{"whoami anonymous", "-/whoami", "", http.StatusOK, "{}"},
		{"whoami with token", "-/whoami", token, http.StatusOK, `"alice"`},
		{"scoped package anonymous", "@second-inc%2fcli", "", http.StatusUnauthorized, ""},
		{"scoped package authenticated (absent)", "@second-inc%2fcli", token, http.StatusNotFound, ""},
		{"no uplink for public packages", "left-pad", token, http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, body := get(tc.path, tc.token)
			if got != tc.want || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s: %d %s, want %d with %q", tc.path, got, body, tc.want, tc.body)
			}
		})
	}

	rc := filepath.Join(dir, "user", ".npmrc")
	if err := s.WriteNpmrc(rc, token); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(rc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf(".npmrc mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(rc)
	for _, want := range []string{"registry=" + s.URL, "@second-inc:registry=" + s.URL, "//" + strings.Trim(strings.TrimPrefix(s.URL, "http://"), "/") + "/:_authToken=" + token} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf(".npmrc lacks %q:\n%s", want, b)
		}
	}

	pid := s.Pid()
	s.Stop()
	s.Stop() // idempotent
	if err := syscall.Kill(-pid, 0); err == nil {
		t.Errorf("process group %d still alive after Stop", pid)
	}
	if _, err := http.Get(s.URL + "-/ping"); err == nil {
		t.Error("registry still answers after Stop")
	}
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := verdaccio.Start(ctx, verdaccio.Options{}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("Start without Dir: %v", err)
	}
	// A "verdaccio" that exits at once: the error carries its log.
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-verdaccio")
	os.WriteFile(fake, []byte("#!/bin/sh\necho boom: bad config >&2\nexit 3\n"), 0o755)
	_, err := verdaccio.Start(ctx, verdaccio.Options{Dir: filepath.Join(dir, "state"), Bin: fake, Port: 1})
	if err == nil || !strings.Contains(err.Error(), "boom: bad config") {
		t.Errorf("Start with a failing binary: %v", err)
	}
}

func TestConfigRestrictsScope(t *testing.T) {
	cfg := verdaccio.Config("/tmp/x", "@acme", "127.0.0.1:4873")
	for _, want := range []string{`"@acme/*":`, "access: $authenticated", "publish: $authenticated", "uplinks: {}", `listen: "127.0.0.1:4873"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "proxy:") || strings.Contains(cfg, "$all") {
		t.Errorf("config proxies or opens packages:\n%s", cfg)
	}
}
