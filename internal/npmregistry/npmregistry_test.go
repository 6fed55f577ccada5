package npmregistry_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/npmregistry/npmtest"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/verdaccio"
)

const secretToken = "npm_TOPSECRET0123456789"

func configFor(t *testing.T, npmrc string) *npmconf.Config {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".npmrc"), []byte(npmrc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := npmconf.Load(npmconf.Options{Env: []string{"HOME=" + home}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Status codes map to short codes, and no error text carries a credential.
func TestErrorCodes(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		switch {
		case strings.HasSuffix(r.URL.Path, "/s401"):
			w.WriteHeader(401)
		case strings.HasSuffix(r.URL.Path, "/s403"):
			w.WriteHeader(403)
		case strings.HasSuffix(r.URL.Path, "/s404"):
			w.WriteHeader(404)
		case strings.HasSuffix(r.URL.Path, "/s500"):
			w.WriteHeader(500)
		case strings.HasSuffix(r.URL.Path, "/badjson"):
			w.Write([]byte("{not json " + secretToken))
		default:
			w.Write([]byte(`{"name":"ok","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"version":"1.0.0","dist":{"integrity":"sha512-x","tarball":"t"}}}}`))
		}
	}))
	defer srv.Close()
	cfg := configFor(t, "registry="+srv.URL+"/\n//"+strings.TrimPrefix(srv.URL, "http://")+"/:_authToken="+secretToken+"\n")
	c := &npmregistry.Client{Config: cfg}
	ctx := context.Background()
	for _, tc := range []struct {
		pkg  string
		want npmregistry.Code
	}{
		{"s401", npmregistry.CodeAuthRequired},
		{"s403", npmregistry.CodeForbidden},
		{"s404", npmregistry.CodeNotFound},
		{"s500", npmregistry.CodeBadResponse},
		{"badjson", npmregistry.CodeBadResponse},
		{"ok", ""},
	} {
		_, err := c.Packument(ctx, tc.pkg)
		if got := npmregistry.CodeOf(err); got != tc.want {
			t.Errorf("%s: code %q (err %v), want %q", tc.pkg, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secretToken) {
			t.Errorf("%s: error leaks the token: %v", tc.pkg, err)
		}
		if gotAuth != "Bearer "+secretToken {
			t.Errorf("%s: Authorization sent = %q", tc.pkg, gotAuth)
		}
	}
	if _, _, exists, err := c.Version(ctx, "s404", "1.0.0"); exists || err != nil {
		t.Errorf("Version of a missing package = %v, %v; want false, nil", exists, err)
	}
	if integ, _, exists, err := c.Version(ctx, "ok", "1.0.0"); !exists || err != nil || integ != "sha512-x" {
		t.Errorf("Version ok = %q %v %v", integ, exists, err)
	}
	anon := &npmregistry.Client{Config: cfg, Anonymous: true}
	anon.Packument(ctx, "ok")
	if gotAuth != "" {
		t.Errorf("Anonymous client sent Authorization %q", gotAuth)
	}

	// Unreachable, with credentials in the registry URL: none in the error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c = &npmregistry.Client{Registry: "http://bob:hunter2@" + addr + "/", HTTP: &http.Client{Timeout: 2 * time.Second}}
	_, err = c.Packument(ctx, "x")
	if npmregistry.CodeOf(err) != npmregistry.CodeUnreachable {
		t.Fatalf("closed port: %v, want unreachable", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "bob") {
		t.Errorf("unreachable error leaks URL credentials: %v", err)
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{"@second-inc/cli": "@second-inc%2fcli", "left-pad": "left-pad"} {
		if got := npmregistry.EscapeName(in); got != want {
			t.Errorf("EscapeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Against a real Verdaccio where the scope needs authentication.
func TestVerdaccio(t *testing.T) {
	bin := testsupport.Tool(t, "verdaccio")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := verdaccio.Start(ctx, verdaccio.Options{Dir: t.TempDir(), Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	token, err := v.AddUser(ctx, "tester", "test-password-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []npmtest.Package{
		{Manifest: map[string]any{"name": "@second-inc/cli", "version": "1.0.0"}},
		{Manifest: map[string]any{"name": "@second-inc/cli", "version": "1.1.0-rc.1"}, Tag: "next"},
	} {
		if err := npmtest.Publish(ctx, v.URL, token, p); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	if err := v.WriteNpmrc(filepath.Join(home, ".npmrc"), token); err != nil {
		t.Fatal(err)
	}
	cfg, err := npmconf.Load(npmconf.Options{Env: []string{"HOME=" + home}})
	if err != nil {
		t.Fatal(err)
	}
	c := &npmregistry.Client{Config: cfg}
	tags, err := c.DistTags(ctx, "@second-inc/cli")
	if err != nil {
		t.Fatal(err)
	}
	if tags["latest"] != "1.0.0" || tags["next"] != "1.1.0-rc.1" {
		t.Errorf("dist-tags = %v", tags)
	}
	integ, tarball, exists, err := c.Version(ctx, "@second-inc/cli", "1.0.0")
	if err != nil || !exists || !strings.HasPrefix(integ, "sha512-") || !strings.HasSuffix(tarball, ".tgz") {
		t.Errorf("Version 1.0.0 = %q %q %v %v", integ, tarball, exists, err)
	}
	if _, _, exists, err := c.Version(ctx, "@second-inc/cli", "9.9.9"); exists || err != nil {
		t.Errorf("Version 9.9.9 = %v %v", exists, err)
	}
	anon := &npmregistry.Client{Config: cfg, Anonymous: true}
	if _, err := anon.DistTags(ctx, "@second-inc/cli"); npmregistry.CodeOf(err) != npmregistry.CodeAuthRequired {
		t.Errorf("anonymous read of the restricted scope: %v, want auth_required", err)
	}
	bad := configFor(t, "@second-inc:registry="+v.URL+"\n//"+v.Host()+"/:_authToken=not-a-real-token\n")
	_, err = (&npmregistry.Client{Config: bad}).DistTags(ctx, "@second-inc/cli")
	if code := npmregistry.CodeOf(err); code != npmregistry.CodeAuthRequired && code != npmregistry.CodeForbidden {
		t.Errorf("bad token: %v, want auth_required or forbidden", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-a-real-token") {
		t.Errorf("error leaks the token: %v", err)
	}
}
