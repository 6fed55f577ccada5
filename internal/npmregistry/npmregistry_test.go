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
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/npmtest"
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, token := testsupport.Verdaccio(t, "@second-inc")
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
	bad := configFor(t, "@second-inc:registry="+v.URL+"\n//"+strings.Trim(strings.TrimPrefix(v.URL, "http://"), "/")+"/:_authToken=not-a-real-token\n")
	_, err = (&npmregistry.Client{Config: bad}).DistTags(ctx, "@second-inc/cli")
	if code := npmregistry.CodeOf(err); code != npmregistry.CodeAuthRequired && code != npmregistry.CodeForbidden {
		t.Errorf("bad token: %v, want auth_required or forbidden", err)
	}
	if err != nil && strings.Contains(err.Error(), "not-a-real-token") {
		t.Errorf("error leaks the token: %v", err)
	}

	checkVerdaccioPingWhoamiPackage(ctx, t, c, bad, v.URL, integ)
}

// checkVerdaccioPingWhoamiPackage runs Ping, Whoami and Package against the
// real registry. Ping and Whoami ask the default registry, so it is named
// (the npmrc only scopes it). c reads with the user's token, bad with a
// wrong one; integ is what 1.0.0 was published with.
func checkVerdaccioPingWhoamiPackage(ctx context.Context, t *testing.T, c *npmregistry.Client, bad *npmconf.Config, registry, integ string) {
	t.Helper()
	at := &npmregistry.Client{Config: c.Config, Registry: registry}
	if err := at.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if user, err := at.Whoami(ctx); err != nil || user != testsupport.VerdaccioUser {
		t.Errorf("Whoami = %q, %v; want %s", user, err, testsupport.VerdaccioUser)
	}
	// Verdaccio answers an anonymous whoami with 200 "{}": not logged in.
	if user, err := (&npmregistry.Client{Config: c.Config, Registry: registry, Anonymous: true}).Whoami(ctx); err != nil || user != "" {
		t.Errorf("anonymous Whoami = %q, %v; want \"\", nil", user, err)
	}
	if user, err := (&npmregistry.Client{Config: bad, Registry: registry}).Whoami(ctx); user != "" || (err != nil && !refusal(err)) {
		t.Errorf("Whoami with a bad token = %q, %v; want no user", user, err)
	}
	info, err := c.Package(ctx, "@second-inc/cli")
	if err != nil || info == nil || info.Versions["1.0.0"] != integ || info.DistTags["next"] != "1.1.0-rc.1" {
		t.Errorf("Package = %+v, %v", info, err)
	}
	if info, err := c.Package(ctx, "@second-inc/nothing-here"); info != nil || err != nil {
		t.Errorf("Package of an unpublished name = %+v, %v; want nil, nil", info, err)
	}
}

// refusal: the registry rejected or lacks our credentials.
func refusal(err error) bool {
	c := npmregistry.CodeOf(err)
	return c == npmregistry.CodeAuthRequired || c == npmregistry.CodeForbidden
}

// Ping, Whoami and Package: what each status means, credentials sent and
// never shown.
func TestPingWhoamiPackage(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	answers := map[string]answer{}
	var gotAuth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		a, ok := answers[r.URL.EscapedPath()]
		if !ok {
			a = answer{404, ""}
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	defer srv.Close()
	cfg := configFor(t, "registry="+srv.URL+"/\n//"+strings.TrimPrefix(srv.URL, "http://")+"/:_authToken="+secretToken+"\n")
	ctx := context.Background()

	tests := []struct {
		name      string
		ping      answer
		whoami    answer
		pingCode  npmregistry.Code
		user      string
		whoCode   npmregistry.Code
		errSubstr string // in the whoami error
	}{
		{"logged in", answer{200, "{}"}, answer{200, `{"username":"alice"}`}, "", "alice", "", ""},
		// Verdaccio answers an anonymous whoami with 200 and "{}".
		{"anonymous 200 {}", answer{200, "{}"}, answer{200, "{}"}, "", "", "", ""},
		{"ping 404 is reachable", answer{404, ""}, answer{401, ""}, "", "", npmregistry.CodeAuthRequired, "GET -/whoami (HTTP 401)"},
		{"ping 401 is reachable", answer{401, ""}, answer{403, ""}, "", "", npmregistry.CodeForbidden, "(HTTP 403)"},
		{"server errors", answer{503, ""}, answer{500, ""}, npmregistry.CodeBadResponse, "", npmregistry.CodeBadResponse, "bad_response GET -/whoami (HTTP 500)"},
		{"whoami not JSON", answer{200, ""}, answer{200, "<html>" + secretToken}, "", "", npmregistry.CodeBadResponse, "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers = map[string]answer{"/-/ping": tc.ping, "/-/whoami": tc.whoami}
			gotAuth = nil
			c := &npmregistry.Client{Config: cfg}
			err := c.Ping(ctx)
			if got := npmregistry.CodeOf(err); got != tc.pingCode || (err != nil && got == "") {
				t.Errorf("Ping: %v, want code %q", err, tc.pingCode)
			}
			user, err := c.Whoami(ctx)
			if got := npmregistry.CodeOf(err); got != tc.whoCode || (err != nil && got == "") {
				t.Errorf("Whoami: %v, want code %q", err, tc.whoCode)
			}
			if user != tc.user {
				t.Errorf("Whoami user %q, want %q", user, tc.user)
			}
			if err != nil && !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("Whoami error %q lacks %q", err, tc.errSubstr)
			}
			if err != nil && strings.Contains(err.Error(), secretToken) {
				t.Errorf("Whoami error leaks the token: %v", err)
			}
			for _, a := range gotAuth {
				if a != "Bearer "+secretToken {
					t.Errorf("Authorization sent = %q", a)
				}
			}
		})
	}

	// Package: versions with integrity and dist-tags; nil, nil when unknown;
	// other failures name the package and registry and keep their code.
	answers = map[string]answer{
		"/@s%2fok":   {200, `{"name":"@s/ok","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"dist":{"integrity":"sha512-a"}},"2.0.0-rc.1":{"dist":{"integrity":"sha512-b"}}}}`},
		"/@s%2fdeny": {401, ""},
	}
	checkPackageAnswers(ctx, t, srv.URL)

	// Nothing listening: Ping and Whoami say unreachable, without URL credentials.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := &npmregistry.Client{Registry: "http://bob:hunter2@" + addr + "/", HTTP: &http.Client{Timeout: 2 * time.Second}}
	for name, err := range map[string]error{"Ping": c.Ping(ctx), "Whoami": func() error { _, err := c.Whoami(ctx); return err }()} {
		if npmregistry.CodeOf(err) != npmregistry.CodeUnreachable || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s on a closed port: %v, want unreachable without credentials", name, err)
		}
	}
}

// checkPackageAnswers checks Package against the server at srvURL answering
// @s/ok, @s/deny (401) and nothing else, named with URL credentials.
func checkPackageAnswers(ctx context.Context, t *testing.T, srvURL string) {
	t.Helper()
	c := &npmregistry.Client{Registry: "http://bob:hunter2@" + strings.TrimPrefix(srvURL, "http://")}
	info, err := c.Package(ctx, "@s/ok")
	if err != nil || info == nil || info.Versions["1.0.0"] != "sha512-a" || info.Versions["2.0.0-rc.1"] != "sha512-b" || info.DistTags["latest"] != "1.0.0" || len(info.Versions) != 2 {
		t.Errorf("Package @s/ok = %+v, %v", info, err)
	}
	if info, err := c.Package(ctx, "@s/missing"); info != nil || err != nil {
		t.Errorf("Package of an unknown package = %+v, %v; want nil, nil", info, err)
	}
	_, err = c.Package(ctx, "@s/deny")
	if npmregistry.CodeOf(err) != npmregistry.CodeAuthRequired {
		t.Errorf("Package @s/deny: %v, want auth_required", err)
	}
	if err == nil || !strings.Contains(err.Error(), "@s/deny") || !strings.Contains(err.Error(), strings.TrimPrefix(srvURL, "http://")) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Package error must name package and registry without URL credentials: %v", err)
	}
}
