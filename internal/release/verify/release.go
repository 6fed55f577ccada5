package verify

import (
	"context"
	"log/slog"

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

// VerifyRelease checks the release's images against the public key at
// pubPath: the `verify` step of cut. err is *Failed when any is not ok.
func VerifyRelease(ctx context.Context, o ReleaseOptions, pubPath string) ([]Row, error) {
	refs, err := oci.ReleaseImageRefs(o.Dist, o.Prefix)
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
