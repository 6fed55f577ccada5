package webbuild

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSortManifestsOrdersKeysAndKeepsValues(t *testing.T) {
	dir := t.TempDir()
	server := filepath.Join(dir, "server")
	if err := os.MkdirAll(server, 0o755); err != nil {
		t.Fatal(err)
	}
	a := filepath.Join(server, "app-paths-manifest.json")
	in := `{"/z/page":"app/z/page.js","/a/page":{"b":[3,1,2],"a":12345678901234567890,"c":"<x>&"}}`
	if err := os.WriteFile(a, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "required-server-files.json")
	if err := os.WriteFile(other, []byte(`{"z":1,"a":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sortManifests(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(a)
	want := `{"/a/page":{"a":12345678901234567890,"b":[3,1,2],"c":"<x>&"},"/z/page":"app/z/page.js"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if b, _ := os.ReadFile(other); string(b) != `{"z":1,"a":2}` {
		t.Errorf("a file that is not a manifest was rewritten: %s", b)
	}
	// Two orders of the same manifest end up byte-identical.
	b := filepath.Join(dir, "b-manifest.json")
	os.WriteFile(b, []byte(`{"/a/page":{"c":"<x>&","a":12345678901234567890,"b":[3,1,2]},"/z/page":"app/z/page.js"}`), 0o644)
	if err := sortManifests(dir); err != nil {
		t.Fatal(err)
	}
	if x, _ := os.ReadFile(b); string(x) != want {
		t.Errorf("reordered manifest: %s", x)
	}
	bad := filepath.Join(dir, "bad-manifest.json")
	os.WriteFile(bad, []byte(`{`), 0o644)
	if err := sortManifests(dir); err == nil {
		t.Error("a broken manifest passed")
	}
}
