package sign

import (
	"context"
	"log/slog"

	"github.com/second-inc/second-release/internal/release/oci"
)

// ReleaseOptions names a release's pushed images and the key to sign them.
type ReleaseOptions struct {
	Dist   string // holds release.json
	Prefix string // where `release images --push` put them
	Key    string // cosign private key; its password comes from COSIGN_PASSWORD
	Log    *slog.Logger
}

// Release signs the images dist/release.json lists: the `sign` step of
// publish and cut.
func Release(ctx context.Context, o ReleaseOptions) ([]Signed, error) {
	refs, err := oci.ReleaseImageRefs(o.Dist, o.Prefix)
	if err != nil {
		return nil, err
	}
	pw, err := PasswordFromEnv()
	if err != nil {
		return nil, err
	}
	sv, err := LoadSigner(o.Key, pw)
	if err != nil {
		return nil, err
	}
	return Sign(ctx, Options{Signer: sv, Refs: refs, Log: o.Log})
}
