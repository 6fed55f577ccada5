package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/second-inc/second-release/internal/release/compose"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/release/ociregistry"
	"github.com/second-inc/second-release/internal/release/sign"
)

// ImagesCheckOptions configures ImagesCheck.
type ImagesCheckOptions struct {
	Config *config.Config
	// Dist holds release.json and the payloads (default: the config's out).
	Dist string
	// WorkDir gets the registry storage, the OCI layout, the throwaway key
	// pair and the rendered compose file.
	WorkDir string
	// RegistryBin is distribution's registry ("" : .tools/bin/registry next
	// to release.yaml, then $PATH).
	RegistryBin string
	// Platforms are the OCI platforms to build (default: images.platforms).
	Platforms []string
	// Keep leaves the registry running (ImagesReport.Registry says where).
	Keep bool
	// Hold leaves the registry running until ImagesReport.Close, for checks
	// that pull the images afterwards (RunHostImages).
	Hold bool
	Log  *slog.Logger
}

// ImagesReport is what ImagesCheck did.
type ImagesReport struct {
	Registry    string   `json:"registry"`
	RegistryPid int      `json:"registryPid,omitempty"`
	Images      []string `json:"images"` // pinned refs
	Signed      int      `json:"signed"` // manifests signed
	RepushBytes int64    `json:"repushBlobBytes"`
	ComposeFile string   `json:"composeFile"`
	PublicKey   string   `json:"publicKey"`
	Version     string   `json:"version"`
	// Web and Worker are the pushed, signed indexes (repo@digest).
	Web    string `json:"web"`
	Worker string `json:"worker"`

	reg *ociregistry.Registry // held for later checks (Hold)
}

// Close stops a registry ImagesCheck held.
func (r *ImagesReport) Close() {
	if r != nil && r.reg != nil {
		r.reg.Close()
		r.reg = nil
	}
}

// Summary is one line for the rehearsal report.
func (r *ImagesReport) Summary() string {
	return fmt.Sprintf("%d images pushed to %s, %d manifests signed and verified (compose file too), re-push uploaded %d blob bytes, unsigned image refused",
		len(r.Images), r.Registry, r.Signed, r.RepushBytes)
}

// ImagesCheck runs the image half of a release offline, end to end (the
// rehearsal's images check): build both
// images on the dev base (a rehearsal has no internet; release.yaml's pinned
// bases are for real releases), push them to a local distribution registry,
// push again (must upload no blob), sign every index and platform manifest
// with a fresh key pair, render the pinned compose file and verify it, and
// check that an unsigned image is refused. dist/release.json is not changed.
func ImagesCheck(ctx context.Context, o ImagesCheckOptions) (*ImagesReport, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin := o.RegistryBin
	if bin == "" {
		var err error
		if bin, err = ociregistry.FindBin(o.Config.Dir); err != nil {
			return nil, err
		}
	}
	reg, err := ociregistry.Start(ctx, bin, filepath.Join(o.WorkDir, "oci-registry"))
	if err != nil {
		return nil, err
	}
	r := &ImagesReport{Registry: reg.Host}
	switch {
	case o.Keep:
		r.RegistryPid = reg.Pid
	case o.Hold:
		r.reg = reg
	default:
		defer reg.Close()
	}

	res, err := buildAndRepush(ctx, o, r, reg.Host+"/second", log)
	if err != nil {
		return r, err
	}
	pins, err := signPushed(ctx, o, r, res, log)
	if err != nil {
		return r, err
	}
	v, err := verifyCompose(ctx, o, r, pins, res.Version)
	if err != nil {
		return r, err
	}
	if err := refuseUnsigned(ctx, o, v, reg.Host); err != nil {
		return r, err
	}
	log.Info("image rehearsal passed", "summary", r.Summary())
	return r, nil
}

// buildAndRepush builds and pushes the release images under prefix, then
// pushes them again, which must upload no blob.
func buildAndRepush(ctx context.Context, o ImagesCheckOptions, r *ImagesReport, prefix string, log *slog.Logger) (*oci.ReleaseResult, error) {
	res, err := oci.BuildRelease(ctx, oci.ReleaseOptions{
		Config: o.Config, Dist: o.Dist, Layout: filepath.Join(o.WorkDir, "oci"),
		Platforms: o.Platforms, DevBase: true, Push: prefix, NoRecord: true, Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	again, err := oci.Push(ctx, oci.PushOptions{Layout: res.Layout, Prefix: prefix, Version: res.Version, Log: log})
	if err != nil {
		return nil, fmt.Errorf("re-push: %w", err)
	}
	for _, p := range again {
		r.RepushBytes += p.BlobBytes
	}
	if r.RepushBytes != 0 {
		return nil, fmt.Errorf("re-pushing unchanged images uploaded %d blob bytes, want 0", r.RepushBytes)
	}
	return res, nil
}

// signPushed signs every pushed image with a fresh key pair under WorkDir and
// returns the web and worker pins for the compose file.
func signPushed(ctx context.Context, o ImagesCheckOptions, r *ImagesReport, res *oci.ReleaseResult, log *slog.Logger) (map[string]string, error) {
	keyDir := filepath.Join(o.WorkDir, "cosign")
	if err := os.RemoveAll(keyDir); err != nil {
		return nil, err
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	password := []byte(hex.EncodeToString(pw))
	key, pub := filepath.Join(keyDir, "cosign.key"), filepath.Join(keyDir, "cosign.pub")
	if err := sign.GenerateKeyPair(key, pub, password); err != nil {
		return nil, err
	}
	r.PublicKey = pub
	sv, err := sign.LoadSigner(key, password)
	if err != nil {
		return nil, err
	}
	r.Version = res.Version
	pins := map[string]string{}
	for _, p := range res.Pushed {
		r.Images = append(r.Images, p.Ref)
		switch p.Name {
		case o.Config.Images.Web.Name:
			pins["web"], r.Web = p.Ref, p.Ref
		case o.Config.Images.Worker.Name:
			pins["worker"], r.Worker = p.Ref, p.Ref
		}
	}
	signed, err := sign.Sign(ctx, sign.Options{Signer: sv, Refs: r.Images, Log: log})
	if err != nil {
		return nil, err
	}
	r.Signed = len(signed)
	return pins, nil
}

// verifyCompose renders the compose file pinned to the pushed images and
// verifies the signatures of the services that are ours with the key pair's
// public key, which it returns for the negative check.
func verifyCompose(ctx context.Context, o ImagesCheckOptions, r *ImagesReport, pins map[string]string, version string) (signature.Verifier, error) {
	r.ComposeFile = filepath.Join(o.WorkDir, "compose", "docker-compose.release.yml")
	if err := compose.Render(compose.RenderOptions{Source: o.Config.Path("docker-compose.yml"), Out: r.ComposeFile, Pins: pins, Version: version}); err != nil {
		return nil, err
	}
	// Only web and worker are ours; their refs do not need the env the
	// file's other fields interpolate.
	svcs, err := compose.Images(r.ComposeFile, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	var targets []Target
	for _, s := range svcs {
		if _, ours := pins[s.Name]; ours {
			targets = append(targets, Target{Ref: s.Image, Service: s.Name})
		}
	}
	v, err := sign.LoadVerifier(r.PublicKey)
	if err != nil {
		return nil, err
	}
	if _, err := Verify(ctx, Options{Verifier: v, Targets: targets}); err != nil {
		return nil, fmt.Errorf("verify %s: %w", r.ComposeFile, err)
	}
	return v, nil
}

// refuseUnsigned is the negative check: an image nobody signed, pushed to
// the registry at host, must be refused.
func refuseUnsigned(ctx context.Context, o ImagesCheckOptions, v signature.Verifier, host string) error {
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = o.Config.Images.Platforms
	}
	unsigned, err := pushUnsigned(ctx, host+"/second/unsigned", platforms)
	if err != nil {
		return err
	}
	rows, err := Verify(ctx, Options{Verifier: v, Targets: []Target{{Ref: unsigned}}})
	var failed *Failed
	if !errors.As(err, &failed) || len(rows) == 0 || rows[0].Status != Unsigned {
		return fmt.Errorf("an unsigned image was not refused (rows %+v, err %v)", rows, err)
	}
	return nil
}

func pushUnsigned(ctx context.Context, repo string, platforms []string) (string, error) {
	idx, err := oci.DevBaseIndex(platforms)
	if err != nil {
		return "", err
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	ref, err := name.NewDigest(repo + "@" + d.String())
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(ref, idx, oci.RemoteOptions(ctx, nil)...); err != nil {
		return "", fmt.Errorf("push unsigned test image: %w", err)
	}
	return ref.String(), nil
}
