package verify

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/second-inc/second-release/internal/release/sign"
	"github.com/second-inc/second-release/internal/testsupport"
)

// signedPull pulls ref through containers/image (tools/signedpull, built by
// scripts/setup) with the policy files; it reports acceptance and output.
func signedPull(t *testing.T, bin string, p *PolicyFiles, ref string) (bool, string) {
	t.Helper()
	out, err := exec.Command(bin, "--policy", p.PolicyPath, "--registries-d", p.RegistryDir, "--insecure", ref).CombinedOutput()
	if err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatalf("run signedpull: %v", err)
		}
	}
	return err == nil, strings.TrimSpace(string(out))
}

// The policy `release verify --print-policy` writes, enforced by the library
// podman, CRI-O and skopeo use, accepts our signed index by digest and by tag
// and refuses an unsigned image, one signed with another key and one whose
// signature is for another digest; `release verify` agrees on every case.
func TestSignedPullPolicyAgreesWithVerify(t *testing.T) {
	bin := testsupport.Tool(t, "signedpull")
	f := setup(t)
	ctx := context.Background()
	// A tag on the genuine index (the fixture's own tag was moved to the
	// tampered one).
	signedDigest, err := name.NewDigest(f.signedIdx)
	if err != nil {
		t.Fatal(err)
	}
	signedTag := signedDigest.Context().Tag("signed")
	desc, err := remote.Get(signedDigest)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(signedTag, desc); err != nil {
		t.Fatal(err)
	}
	// podman pulls one platform's image out of an index and checks that
	// image's signature: give every platform manifest of the tampered index
	// the genuine one's signature too, so the refusal is about the digest.
	copyChildSignatures(t, f.signedIdx, f.tampered)
	p, err := Policy(f.host+"/second", f.pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WritePolicy(t.TempDir(), "second"); err != nil {
		t.Fatal(err)
	}
	v, err := sign.LoadVerifier(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ref string
		accept    bool
		refusal   string // in containers/image's message
	}{
		{"signed index by digest", f.signedIdx, true, ""},
		{"signed index by tag", signedTag.String(), true, ""},
		{"unsigned", f.unsigned, false, "signature"},
		{"signed with another key", f.otherKey, false, "signature"},
		{"signature for another digest", f.tampered, false, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, out := signedPull(t, bin, p, tc.ref)
			t.Logf("containers/image: %s", out)
			if ok != tc.accept || (!ok && !strings.Contains(strings.ToLower(out), tc.refusal)) {
				t.Errorf("containers/image: accepted=%v, want %v (refusal mentioning %q):\n%s", ok, tc.accept, tc.refusal, out)
			}
			// release verify takes digests only: a tag is checked at the
			// digest it points to, as a pull by tag is.
			ref := tc.ref
			if r, err := name.ParseReference(ref); err == nil {
				if _, isTag := r.(name.Tag); isTag {
					d, err := remote.Head(r)
					if err != nil {
						t.Fatal(err)
					}
					ref = r.Context().Digest(d.Digest.String()).String()
				}
			}
			rows, err := Verify(ctx, Options{Verifier: v, Targets: []Target{{Ref: ref}}})
			if (err == nil) != tc.accept {
				t.Errorf("release verify disagrees: err %v (rows %+v), want accepted=%v", err, rows, tc.accept)
			}
		})
	}

	// The same signed index under a policy for the other key is refused.
	other, err := Policy(f.host+"/second", f.otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.WritePolicy(t.TempDir(), "second"); err != nil {
		t.Fatal(err)
	}
	if ok, out := signedPull(t, bin, other, f.signedIdx); ok {
		t.Errorf("a policy for another key accepted our index:\n%s", out)
	}
}

func TestPolicyRefusesTaggedPrefix(t *testing.T) {
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := sign.GenerateKeyPair(filepath.Join(filepath.Dir(pub), "cosign.key"), pub, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ghcr.io/second-inc/second-web:1.0.0", "ghcr.io/second-inc@sha256:" + strings.Repeat("0", 64), "UPPER/case"} {
		if _, err := Policy(bad, pub); err == nil || !strings.Contains(err.Error(), "repository prefix") {
			t.Errorf("Policy(%q) err = %v, want a refusal asking for a repository prefix", bad, err)
		}
	}
	p, err := Policy("127.0.0.1:5000/second/", pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p.Policy), `"127.0.0.1:5000/second"`) || !strings.Contains(string(p.Policy), `"sigstoreSigned"`) ||
		!strings.Contains(string(p.Registries), "use-sigstore-attachments: true") {
		t.Errorf("policy files:\n%s\n%s", p.Policy, p.Registries)
	}
}

// copyChildSignatures puts the signature of each platform manifest of index
// from onto the sig tag of the same-position manifest of index to.
func copyChildSignatures(t *testing.T, from, to string) {
	t.Helper()
	children := func(ref string) []name.Digest {
		d, err := name.NewDigest(ref)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(d)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var out []name.Digest
		for _, m := range im.Manifests {
			out = append(out, d.Context().Digest(m.Digest.String()))
		}
		return out
	}
	sigTag := func(d name.Digest) name.Tag {
		return d.Context().Tag("sha256-" + strings.TrimPrefix(d.DigestStr(), "sha256:") + ".sig")
	}
	good, bad := children(from), children(to)
	for i := range good {
		sig, err := remote.Image(sigTag(good[i]))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(sigTag(bad[i]), sig); err != nil {
			t.Fatal(err)
		}
	}
}
