// Package sign signs pushed images with a cosign key pair, through the cosign
// libraries: each index and each platform manifest is signed by digest and the
// signature is stored under the sha256-<hex>.sig tag, where `cosign verify`
// looks. Key mode only: nothing is sent to a transparency log.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	cremote "github.com/sigstore/cosign/v3/pkg/cosign/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/cosign/v3/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/second-inc/second-release/internal/release/oci"
)

// PasswordEnv holds the private key's password, as for the cosign CLI.
const PasswordEnv = "COSIGN_PASSWORD"

// PasswordFromEnv reads COSIGN_PASSWORD. Set but empty is an (unencrypted-
// equivalent) empty password, as cosign allows; unset is an error because
// release never prompts.
func PasswordFromEnv() ([]byte, error) {
	p, ok := os.LookupEnv(PasswordEnv)
	if !ok {
		return nil, fmt.Errorf("%s is not set: export the cosign key's password as %s (empty is allowed)", PasswordEnv, PasswordEnv)
	}
	return []byte(p), nil
}

// GenerateKeyPair writes a new cosign key pair: keyPath (encrypted with
// password, mode 0600) and pubPath. It refuses to overwrite either file.
func GenerateKeyPair(keyPath, pubPath string, password []byte) error {
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("generate key pair: %s already exists: move it away or choose another --key", p)
		}
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return fmt.Errorf("generate key pair: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o755); err != nil {
		return err
	}
	if err := writeNew(keyPath, kb.PrivateBytes, 0o600); err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if err := writeNew(pubPath, kb.PublicBytes, 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadSigner decrypts a cosign private key file.
func LoadSigner(keyPath string, password []byte) (signature.SignerVerifier, error) {
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w (create one with `release sign --generate-key`)", err)
	}
	sv, err := cosign.LoadPrivateKey(b, password, nil)
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w (is %s right?)", keyPath, err, PasswordEnv)
	}
	return sv, nil
}

// LoadVerifier reads a PEM public key (cosign.pub).
func LoadVerifier(pubPath string) (signature.Verifier, error) {
	b, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", pubPath, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", pubPath, err)
	}
	return v, nil
}

// Options configures Sign.
type Options struct {
	Signer signature.SignerVerifier
	// Refs are image references; a tag is resolved to its digest first, and
	// what is signed is always the digest.
	Refs      []string
	Transport http.RoundTripper
	Log       *slog.Logger
}

// Signed is one signed manifest.
type Signed struct {
	Ref          string `json:"ref"`  // repository@digest
	Kind         string `json:"kind"` // index | manifest
	Platform     string `json:"platform,omitempty"`
	SignatureTag string `json:"signatureTag"` // where cosign finds it
}

// Sign signs every reference and, for an index, each platform manifest in
// it. Signing again with the same key adds nothing (the existing signature
// is found and kept).
func Sign(ctx context.Context, opts Options) ([]Signed, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Signer == nil {
		return nil, errors.New("sign: no key loaded")
	}
	if len(opts.Refs) == 0 {
		return nil, errors.New("sign: no image references given")
	}
	ropts := oci.RemoteOptions(ctx, opts.Transport)
	var out []Signed
	for _, r := range opts.Refs {
		ref, err := name.ParseReference(r)
		if err != nil {
			return out, fmt.Errorf("sign %q: not an image reference: %w", r, err)
		}
		desc, err := remote.Get(ref, ropts...)
		if err != nil {
			return out, fmt.Errorf("sign %s: resolve: %w", r, err)
		}
		top := ref.Context().Digest(desc.Digest.String())
		targets := []Signed{{Ref: top.String(), Kind: "manifest"}}
		if desc.MediaType.IsIndex() {
			targets[0].Kind = "index"
			idx, err := desc.ImageIndex()
			if err != nil {
				return out, fmt.Errorf("sign %s: read index: %w", r, err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return out, fmt.Errorf("sign %s: read index: %w", r, err)
			}
			for _, m := range im.Manifests {
				s := Signed{Ref: ref.Context().Digest(m.Digest.String()).String(), Kind: "manifest"}
				if m.Platform != nil {
					s.Platform = m.Platform.OS + "/" + m.Platform.Architecture
				}
				targets = append(targets, s)
			}
		}
		for _, t := range targets {
			tag, err := signOne(t.Ref, opts.Signer, ropts)
			if err != nil {
				return out, err
			}
			t.SignatureTag = tag
			log.Info("signed", "ref", t.Ref, "kind", t.Kind, "platform", t.Platform, "signature", tag)
			out = append(out, t)
		}
	}
	return out, nil
}

func signOne(ref string, sv signature.SignerVerifier, ropts []remote.Option) (string, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return "", err
	}
	body, err := (&payload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("sign %s: payload: %w", ref, err)
	}
	raw, err := sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", ref, err)
	}
	sig, err := static.NewSignature(body, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", ref, err)
	}
	co := []ociremote.Option{ociremote.WithRemoteOptions(ropts...)}
	se, err := ociremote.SignedEntity(d, co...)
	if err != nil {
		return "", fmt.Errorf("sign %s: read signed entity: %w", ref, err)
	}
	se, err = mutate.AttachSignatureToEntity(se, sig, mutate.WithDupeDetector(cremote.NewDupeDetector(sv)))
	if err != nil {
		return "", fmt.Errorf("sign %s: attach: %w", ref, err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se, co...); err != nil {
		return "", fmt.Errorf("sign %s: write signature: %w", ref, err)
	}
	tag, err := ociremote.SignatureTag(d, co...)
	if err != nil {
		return "", err
	}
	return tag.String(), nil
}
