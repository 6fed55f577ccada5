package verify

import (
	"context"
	"log/slog"
	"sort"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/release/sign"
)

// ReleaseOptions names a release's pushed images: dist/release.json's image
// artifacts at a repository prefix.
type ReleaseOptions struct {
	Dist   string // holds release.json
	Prefix string // where `release images --push` put them
	Log    *slog.Logger
}

// refs are the pinned references of the release's images, sorted.
func (o ReleaseOptions) refs() ([]string, error) {
	rel, err := artifact.Read(o.Dist)
	if err != nil {
		return nil, err
	}
	m, err := oci.ImageRefs(o.Prefix, rel)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range m {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// SignRelease signs the release's images with the cosign key at keyPath
// (password from COSIGN_PASSWORD): the `sign` step of publish and cut.
func SignRelease(ctx context.Context, o ReleaseOptions, keyPath string) ([]sign.Signed, error) {
	refs, err := o.refs()
	if err != nil {
		return nil, err
	}
	pw, err := sign.PasswordFromEnv()
	if err != nil {
		return nil, err
	}
	sv, err := sign.LoadSigner(keyPath, pw)
	if err != nil {
		return nil, err
	}
	return sign.Sign(ctx, sign.Options{Signer: sv, Refs: refs, Log: o.Log})
}

// VerifyRelease checks the release's images against the public key at
// pubPath: the `verify` step of cut. err is *Failed when any is not ok.
func VerifyRelease(ctx context.Context, o ReleaseOptions, pubPath string) ([]Row, error) {
	refs, err := o.refs()
	if err != nil {
		return nil, err
	}
	v, err := sign.LoadVerifier(pubPath)
	if err != nil {
		return nil, err
	}
	var targets []Target
	for _, r := range refs {
		targets = append(targets, Target{Ref: r})
	}
	return Verify(ctx, Options{Verifier: v, Targets: targets})
}
