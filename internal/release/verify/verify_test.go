package verify

import (
	"bytes"
	"context"
	"errors"
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

	"github.com/second-inc/second-release/internal/release/compose"
	"github.com/second-inc/second-release/internal/release/sign"
	"github.com/second-inc/second-release/internal/testsupport"
)

type fixture struct {
	host              string
	pub, otherPub     string
	signedIdx         string // repo@digest of a signed index
	signedChild       string // one of its platform manifests
	unsigned          string // repo@digest never signed
	otherKey          string // repo@digest signed by another key
	tampered          string // repo@digest whose .sig was copied from signedIdx
	tag               string // repo:tag of the signed index
	tamperedIdxDigest v1.Hash
}

func pushIndex(t *testing.T, ref string, annotation string) name.Digest {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx = mutate.Annotations(idx, map[string]string{"org.opencontainers.image.version": annotation}).(v1.ImageIndex)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return r.Context().Digest(d.String())
}

func setup(t *testing.T) fixture {
	t.Helper()
	reg := testsupport.StartRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()
	f := fixture{host: reg.Host, pub: filepath.Join(dir, "cosign.pub"), otherPub: filepath.Join(dir, "other.pub")}
	if err := sign.GenerateKeyPair(filepath.Join(dir, "cosign.key"), f.pub, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	if err := sign.GenerateKeyPair(filepath.Join(dir, "other.key"), f.otherPub, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	sv, err := sign.LoadSigner(filepath.Join(dir, "cosign.key"), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.LoadSigner(filepath.Join(dir, "other.key"), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	f.tag = reg.Host + "/second/second-web:1.0.0"
	good := pushIndex(t, f.tag, "1.0.0")
	signed, err := sign.Sign(ctx, sign.Options{Signer: sv, Refs: []string{good.String()}})
	if err != nil {
		t.Fatal(err)
	}
	f.signedIdx, f.signedChild = signed[0].Ref, signed[1].Ref
	f.unsigned = pushIndex(t, reg.Host+"/second/second-worker:1.0.0", "1.0.0").String()
	otherRef := pushIndex(t, reg.Host+"/second/other:1.0.0", "1.0.0")
	if _, err := sign.Sign(ctx, sign.Options{Signer: other, Refs: []string{otherRef.String()}}); err != nil {
		t.Fatal(err)
	}
	f.otherKey = otherRef.String()

	// Tampering: a different index pushed over the tag, with the genuine
	// index's signature copied onto the sig tag of the new digest.
	bad := pushIndex(t, f.tag, "1.0.0-tampered")
	f.tampered = bad.String()
	goodSigTag, _ := name.NewTag(good.Context().String() + ":sha256-" + strings.TrimPrefix(good.DigestStr(), "sha256:") + ".sig")
	badSigTag, _ := name.NewTag(bad.Context().String() + ":sha256-" + strings.TrimPrefix(bad.DigestStr(), "sha256:") + ".sig")
	sigImg, err := remote.Image(goodSigTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(badSigTag, sigImg); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerify(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	v, err := sign.LoadVerifier(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ref  string
		want []Status // the ref's row, then its platform manifests
	}{
		{"signed index", f.signedIdx, []Status{OK, OK, OK}},
		{"signed platform manifest", f.signedChild, []Status{OK}},
		{"unsigned", f.unsigned, []Status{Unsigned, Unsigned, Unsigned}},
		{"signed by another key", f.otherKey, []Status{BadSignature, BadSignature, BadSignature}},
		{"tampered manifest with a copied signature", f.tampered, []Status{BadSignature, Unsigned, Unsigned}},
		{"tag only", f.tag, []Status{TagOnly}},
		{"missing", f.host + "/second/nothing@sha256:" + strings.Repeat("0", 64), []Status{Unreachable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := Verify(ctx, Options{Verifier: v, Targets: []Target{{Ref: tc.ref}}})
			var got []Status
			for _, r := range rows {
				got = append(got, r.Status)
			}
			if strings.Join(statusStrings(got), ",") != strings.Join(statusStrings(tc.want), ",") {
				t.Fatalf("statuses = %v, want %v (rows %+v)", got, tc.want, rows)
			}
			allOK := true
			for _, s := range tc.want {
				allOK = allOK && s == OK
			}
			var failed *Failed
			if allOK && err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if !allOK && (!errors.As(err, &failed) || !strings.Contains(err.Error(), tc.ref)) {
				t.Fatalf("err = %v, want *Failed naming %s", err, tc.ref)
			}
		})
	}

	// The real cosign CLI agrees on the signed and the tampered digests.
	cosignBin := testsupport.Tool(t, "cosign")
	for ref, wantOK := range map[string]bool{f.signedIdx: true, f.tampered: false, f.otherKey: false} {
		cmd := exec.Command(cosignBin, "verify", "--key", f.pub, "--insecure-ignore-tlog", "--allow-http-registry", ref)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Errorf("cosign verify %s: err %v, want ok=%v\n%s", ref, err, wantOK, out)
		}
	}

	// Another key's public half rejects the genuinely signed index.
	ov, err := sign.LoadVerifier(f.otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, Options{Verifier: ov, Targets: []Target{{Ref: f.signedIdx}}}); err == nil {
		t.Error("verify with another key's public key passed")
	}
}

func statusStrings(s []Status) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestVerifyComposeTable(t *testing.T) {
	f := setup(t)
	v, err := sign.LoadVerifier(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "docker-compose.release.yml")
	body := "services:\n  web:\n    image: " + f.signedIdx + "\n  worker:\n    image: " + f.unsigned + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	svcs, err := compose.Images(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, s := range svcs {
		targets = append(targets, Target{Ref: s.Image, Service: s.Name})
	}
	rows, err := Verify(context.Background(), Options{Verifier: v, Targets: targets})
	var failed *Failed
	if !errors.As(err, &failed) || !strings.Contains(err.Error(), f.unsigned) || strings.Contains(err.Error(), f.signedIdx) {
		t.Fatalf("err = %v, want only the worker named", err)
	}
	var buf bytes.Buffer
	WriteTable(&buf, rows)
	table := buf.String()
	for _, want := range []string{"STATUS", "ok        web", "unsigned  worker", "linux/arm64"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
