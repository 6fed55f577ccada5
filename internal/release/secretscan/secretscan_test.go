package secretscan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
	}{
		{".env", ".env*"},
		{"dist/web/.env.production", ".env*"},
		{".npmrc", ".npmrc"},
		{"a/b/server.pem", "*.pem"},
		{"tls.KEY", "*.key"},
		{"home/.ssh/id_ed25519", "id_* (ssh key)"},
		{"id_rsa.pub", "id_* (ssh key)"},
		{"cosign.key", "cosign.key"},
		{"server.js", ""},
		{"environment.js", ""},
		{"keys.js", ""},
		{"dist/web/node_modules/next/package.json", ""},
	} {
		if got := Match(tc.name); got != tc.rule {
			t.Errorf("Match(%q) = %q, want %q", tc.name, got, tc.rule)
		}
	}
}

func TestScanListsEveryFile(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"ok.js", ".env", "dist/web/.env.local", "bin/cosign.key", "certs/a.pem", "x/.npmrc", "x/id_rsa", "dist/web/server.js"} {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := Scan(root)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("Scan = %v, want *Error", err)
	}
	want := []string{".env", "bin/cosign.key", "certs/a.pem", "dist/web/.env.local", "x/.npmrc", "x/id_rsa"}
	if len(se.Findings) != len(want) {
		t.Fatalf("findings = %+v, want %v", se.Findings, want)
	}
	for i, w := range want {
		if se.Findings[i].Path != w {
			t.Errorf("finding %d = %s, want %s", i, se.Findings[i].Path, w)
		}
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %s:\n%s", w, err)
		}
	}
	if strings.Contains(err.Error(), "ok.js") || strings.Contains(err.Error(), "server.js") {
		t.Errorf("error names a harmless file:\n%s", err)
	}
}

func TestScanClean(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Scan(root); err != nil {
		t.Fatalf("Scan clean dir: %v", err)
	}
}
