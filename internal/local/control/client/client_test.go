package client

import (
	"os"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/home"
)

func TestIsLoopbackURL(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:4000":         true,
		"http://localhost:4000/":        true,
		"http://[::1]:4000":             true,
		"http://127.0.0.1":              false,
		"https://127.0.0.1:4000":        false,
		"http://evil.example:4000":      false,
		"http://127.0.0.1.evil.com:80":  false,
		"http://user:pw@127.0.0.1:4000": false,
		"http://10.0.0.5:4000":          false,
		"not a url":                     false,
	} {
		if got := IsLoopbackURL(u); got != want {
			t.Errorf("IsLoopbackURL(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestOpenRefusesForeignURL(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	tok := l.Secret(home.SecretControlToken)
	os.MkdirAll(l.SecretsDir(), 0o700)
	os.WriteFile(tok, []byte(strings.Repeat("a", 64)+"\n"), 0o600)
	os.WriteFile(l.ControlFile(), []byte(`{"url":"http://evil.example:80","port":80,"tokenPath":"`+tok+`"}`), 0o644)
	if _, err := Open(l); err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("Open with a foreign url: %v", err)
	}
	os.WriteFile(l.ControlFile(), []byte(`{"url":"http://127.0.0.1:4000","port":4000,"tokenPath":"`+tok+`"}`), 0o644)
	t.Setenv("SECOND_LOCAL_CLI_TOKEN", "")
	c, err := Open(l)
	if err != nil || c.Token != strings.Repeat("a", 64) {
		t.Fatalf("Open = %+v, %v", c, err)
	}
	t.Setenv("SECOND_LOCAL_CLI_TOKEN", "from-env")
	if c, err := Open(l); err != nil || c.Token != "from-env" {
		t.Fatalf("Open with SECOND_LOCAL_CLI_TOKEN = %+v, %v", c, err)
	}
}
