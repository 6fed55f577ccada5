package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/home"
)

func TestEnsureCreatesOnceWithModes(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	env := func(string) string { return "" }
	first, err := Ensure(Options{Layout: l, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(l.SecretsDir())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("secrets dir mode %v, want 0700", st.Mode().Perm())
	}
	for _, s := range Specs() {
		st, err := os.Stat(l.Secret(s.File))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", s.File, st.Mode().Perm())
		}
	}
	if b, err := hex.DecodeString(first.InternalAPIToken); err != nil || len(b) != 32 {
		t.Errorf("internal api token is not 32 hex-encoded bytes: %d bytes, %v", len(b), err)
	}
	if b, err := base64.RawURLEncoding.DecodeString(first.SessionSecret); err != nil || len(b) != 32 {
		t.Errorf("session secret is not 32 base64url bytes: %d bytes, %v", len(b), err)
	}
	if b, err := base64.StdEncoding.DecodeString(first.ServerActionsKey); err != nil || len(b) != 32 {
		t.Errorf("server actions key is not a base64 AES-256 key: %d bytes, %v", len(b), err)
	}
	if first.InternalAPIToken == first.ControlToken {
		t.Error("two secrets share a value")
	}
	second, err := Ensure(Options{Layout: l, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Error("secrets changed between runs; they must be reused")
	}
}

func TestEnsureTightensLoosenedModes(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	if _, err := Ensure(Options{Layout: l, Getenv: func(string) string { return "" }}); err != nil {
		t.Fatal(err)
	}
	f := l.Secret(home.SecretControlToken)
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.SecretsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(Options{Layout: l, Getenv: func(string) string { return "" }}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{f: 0o600, l.SecretsDir(): 0o700} {
		st, _ := os.Stat(path)
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", filepath.Base(path), st.Mode().Perm(), want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	env := map[string]string{"INTERNAL_API_TOKEN": "from-env", "SECOND_NO_AUTH_SESSION_SECRET": "sess-env"}
	got, err := Ensure(Options{Layout: l, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"INTERNAL_API_TOKEN", got.InternalAPIToken, "from-env"},
		{"SECOND_NO_AUTH_SESSION_SECRET", got.SessionSecret, "sess-env"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	// The override does not overwrite the stored secret.
	stored, err := os.ReadFile(l.Secret(home.SecretInternalAPIToken))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(stored)) == "from-env" {
		t.Error("env override was written to the secret file")
	}
}

func TestEmptyFileIsReplaced(t *testing.T) {
	l := home.Layout{Root: t.TempDir()}
	if err := os.MkdirAll(l.SecretsDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Secret(home.SecretSessionSecret), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Ensure(Options{Layout: l, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if got.SessionSecret == "" {
		t.Fatal("empty secret file was reused")
	}
}
