package nixcheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/testsupport"
)

func TestNarHashOfKnownTree(t *testing.T) {
	testsupport.Tool(t, "nix")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h1, err := NarHash(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h1, "sha256-") || len(h1) != 51 {
		t.Fatalf("hash %q is not an SRI sha256", h1)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("hello!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h2, _ := NarHash(context.Background(), dir)
	if h1 == h2 {
		t.Fatal("changing a file did not change the NAR hash")
	}
}

// A deliberately stale vendorHash must be caught, with the command that fixes it.
func TestStaleVendorHashIsCaught(t *testing.T) {
	testsupport.Tool(t, "nix")
	repo := testsupport.RepoRoot(t)
	stale := filepath.Join(t.TempDir(), "vendor-hash.nix")
	if err := os.WriteFile(stale, []byte(`"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckVendorHash(context.Background(), repo, stale)
	if err == nil {
		t.Fatal("a stale vendorHash passed the check")
	}
	if !strings.Contains(err.Error(), "go run ./tools/vendorhash -print") {
		t.Fatalf("the error does not say how to get the right hash: %v", err)
	}
	// And the value it names is what -fix would write: the check then passes.
	if err := WriteVendorHash(stale, extractGot(t, err.Error())); err != nil {
		t.Fatal(err)
	}
	if err := CheckVendorHash(context.Background(), repo, stale); err != nil {
		t.Fatalf("after writing the computed hash the check still fails: %v", err)
	}
}

func extractGot(t *testing.T, msg string) string {
	t.Helper()
	i := strings.Index(msg, "hashes to ")
	if i < 0 {
		t.Fatalf("no computed hash in %q", msg)
	}
	return strings.TrimSuffix(strings.Fields(msg[i+len("hashes to "):])[0], ".")
}

func TestParseAllRejectsBrokenNix(t *testing.T) {
	testsupport.Tool(t, "nix-instantiate")
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, "nix"), 0o755)
	os.WriteFile(filepath.Join(repo, "flake.nix"), []byte("{ outputs = _: {}; }\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "nix", "bad.nix"), []byte("{ a = ; }\n"), 0o644)
	err := ParseAll(context.Background(), repo)
	if err == nil || !strings.Contains(err.Error(), "bad.nix") {
		t.Fatalf("want an error naming bad.nix, got %v", err)
	}
	if err := ParseAll(context.Background(), testsupport.RepoRoot(t)); err != nil {
		t.Fatalf("the project's own nix files: %v", err)
	}
}
