package sign

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/second-inc/second-release/internal/testsupport"
)

func TestGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := GenerateKeyPair(key, pub, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("cosign.key mode %o, want 600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(key)
	if !strings.Contains(string(b), "ENCRYPTED SIGSTORE PRIVATE KEY") {
		t.Errorf("cosign.key is not an encrypted sigstore key:\n%s", b)
	}
	if err := GenerateKeyPair(key, pub, []byte("pw")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second generate: err = %v, want already exists", err)
	}
	for _, tc := range []struct {
		pw   string
		fail bool
	}{{"pw", false}, {"wrong", true}, {"", true}} {
		_, err := LoadSigner(key, []byte(tc.pw))
		if (err != nil) != tc.fail {
			t.Errorf("LoadSigner(password %q): err = %v, want failure %v", tc.pw, err, tc.fail)
		}
	}
	if _, err := LoadVerifier(pub); err != nil {
		t.Error(err)
	}
}

func TestPasswordFromEnv(t *testing.T) {
	t.Setenv(PasswordEnv, "")
	if p, err := PasswordFromEnv(); err != nil || len(p) != 0 {
		t.Errorf("empty COSIGN_PASSWORD: %q %v", p, err)
	}
	os.Unsetenv(PasswordEnv)
	if _, err := PasswordFromEnv(); err == nil || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("unset COSIGN_PASSWORD: err = %v, want it named", err)
	}
}

// pushIndex pushes a two-platform random index and returns repo:tag.
func pushIndex(t *testing.T, host, repo string) (tag string, idx v1.ImageIndex) {
	t.Helper()
	idx = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	tag = host + "/" + repo + ":1.0.0"
	ref, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return tag, idx
}

// cosignVerify runs the real cosign CLI in key mode, offline.
func cosignVerify(t *testing.T, cosign, pub, ref string) (string, error) {
	t.Helper()
	cmd := exec.Command(cosign, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSignInteropWithCosignCLI(t *testing.T) {
	cosignBin := testsupport.Tool(t, "cosign")
	reg := testsupport.StartRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()

	// A key pair made by the cosign CLI itself: release must read it.
	gen := exec.Command(cosignBin, "generate-key-pair")
	gen.Dir = dir
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD=s3cret", "HOME="+t.TempDir())
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	sv, err := LoadSigner(key, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}

	tag, idx := pushIndex(t, reg.Host, "second/second-web")
	signed, err := Sign(ctx, Options{Signer: sv, Refs: []string{tag}})
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) != 3 || signed[0].Kind != "index" || signed[1].Platform != "linux/amd64" || signed[2].Platform != "linux/arm64" {
		t.Fatalf("signed = %+v, want the index and both platform manifests", signed)
	}
	d, _ := idx.Digest()
	if !strings.HasSuffix(signed[0].Ref, "@"+d.String()) || !strings.HasSuffix(signed[0].SignatureTag, ":sha256-"+d.Hex+".sig") {
		t.Errorf("index signed as %+v, want digest %s", signed[0], d)
	}
	for _, s := range signed {
		if out, err := cosignVerify(t, cosignBin, pub, s.Ref); err != nil {
			t.Errorf("cosign verify %s: %v\n%s", s.Ref, err, out)
		}
	}

	// Signing again keeps a single signature per digest.
	if _, err := Sign(ctx, Options{Signer: sv, Refs: []string{signed[0].Ref}}); err != nil {
		t.Fatal(err)
	}
	sigImg, err := remote.Image(mustRef(t, signed[0].SignatureTag))
	if err != nil {
		t.Fatal(err)
	}
	if layers, _ := sigImg.Layers(); len(layers) != 1 {
		t.Errorf("signature image has %d layers after re-signing, want 1", len(layers))
	}

	// Another key's public half must not verify.
	other := t.TempDir()
	if err := GenerateKeyPair(filepath.Join(other, "k"), filepath.Join(other, "k.pub"), nil); err != nil {
		t.Fatal(err)
	}
	if out, err := cosignVerify(t, cosignBin, filepath.Join(other, "k.pub"), signed[0].Ref); err == nil {
		t.Errorf("cosign verify with another key succeeded:\n%s", out)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
