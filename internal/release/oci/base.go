package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/cache"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DevBaseLabel marks images built on DevBase: "node-v20.x.y" where the
// host's node went in (the image runs), "no-node" where it did not (the
// image exists so an offline rehearsal can build, push, sign and verify it).
const DevBaseLabel = "dev.second.base"

// Base gives the base image for each platform.
type Base interface {
	// Image returns the base for platform ("linux/amd64") and the reference
	// recorded in the org.opencontainers.image.base.* annotations ("" for none).
	Image(ctx context.Context, platform string) (img v1.Image, ref string, err error)
}

// RemoteBase is a registry image or index pinned by digest.
type RemoteBase struct {
	Ref    string // name@sha256:<hex>
	Remote []remote.Option
	// CacheDir keeps the base's layers by digest across runs ("" : no cache).
	CacheDir string
}

// Image implements Base. A reference without a digest is refused here as
// well as in release.yaml, so no code path builds on a moving tag.
func (b RemoteBase) Image(ctx context.Context, platform string) (v1.Image, string, error) {
	d, err := name.NewDigest(b.Ref)
	if err != nil {
		return nil, "", fmt.Errorf("base image %q is not pinned by digest (write it as name@sha256:<64 hex>): %w", b.Ref, err)
	}
	opts := append([]remote.Option{remote.WithContext(ctx)}, b.Remote...)
	desc, err := remote.Get(d, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("fetch base image %s: %w", b.Ref, err)
	}
	osName, arch, _ := strings.Cut(platform, "/")
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, "", fmt.Errorf("read base index %s: %w", b.Ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, "", fmt.Errorf("read base index %s: %w", b.Ref, err)
		}
		for _, m := range im.Manifests {
			if m.Platform != nil && m.Platform.OS == osName && m.Platform.Architecture == arch && m.MediaType.IsImage() {
				img, err := idx.Image(m.Digest)
				if err != nil {
					return nil, "", fmt.Errorf("read %s of base %s: %w", platform, b.Ref, err)
				}
				return b.cached(img), d.String(), nil
			}
		}
		return nil, "", fmt.Errorf("base image %s has no %s image: pick a multi-platform base or drop %s from images.platforms", b.Ref, platform, platform)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, "", fmt.Errorf("read base image %s: %w", b.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", fmt.Errorf("read base image config %s: %w", b.Ref, err)
	}
	if cf.OS != osName || cf.Architecture != arch {
		return nil, "", fmt.Errorf("base image %s is %s/%s, not %s: pin a multi-platform index instead", b.Ref, cf.OS, cf.Architecture, platform)
	}
	return b.cached(img), d.String(), nil
}

// cached reads layers through the on-disk cache; layers are content
// addressed, so a cached layer is the pinned one.
func (b RemoteBase) cached(img v1.Image) v1.Image {
	if b.CacheDir == "" {
		return img
	}
	return cache.Image(img, cache.NewFilesystemCache(b.CacheDir))
}

// DevBase is a base made on the spot, for offline rehearsals and tests:
// /etc/passwd and /etc/group naming the node user (1000:1000), /tmp, and on
// the host's platform the host's Node 20 with the shared libraries it loads
// (so that image runs). Other platforms get no node: their images are
// labelled DevBaseLabel=no-node and do not run.
type DevBase struct {
	// Node is the node binary for the host platform ("" : node on PATH).
	Node string
}

// Image implements Base.
func (b DevBase) Image(ctx context.Context, platform string) (v1.Image, string, error) {
	img, err := DevBaseImage(platform)
	if err != nil || platform != HostPlatform() {
		return img, "", err
	}
	layer, node, err := nodeLayer(ctx, b.Node)
	if err != nil {
		return nil, "", err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: time.Unix(0, 0).UTC()}, CreatedBy: "second release: host node " + node.Version + " and its shared libraries",
	}})
	if err != nil {
		return nil, "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", err
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{DevBaseLabel: "node-" + node.Version}
	cf.Config.Env = append(cf.Config.Env, "NODE_VERSION="+strings.TrimPrefix(node.Version, "v"))
	img, err = mutate.ConfigFile(img, cf)
	return img, "", err
}

// DevBaseImage builds DevBase's image for one platform without node.
func DevBaseImage(platform string) (v1.Image, error) {
	osName, arch, _ := strings.Cut(platform, "/")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	files := []struct {
		name, body string
		mode       int64
	}{
		{"etc/", "", 0o755},
		{"etc/group", "root:x:0:\nnode:x:1000:\n", 0o644},
		{"etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n", 0o644},
		{"home/", "", 0o755},
		{"home/node/", "", 0o755},
		{"tmp/", "", 0o1777},
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if f.name == "home/node/" {
			h.Uid, h.Gid = AppUID, AppGID
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "second release: minimal offline base (no node)",
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = map[string]string{DevBaseLabel: "no-node"}
	return mutate.ConfigFile(img, cf)
}

// DevBaseIndex is DevBase for several platforms as one index, e.g. to push
// it to a local registry and pin it by digest in release.yaml.
func DevBaseIndex(platforms []string) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := DevBaseImage(p)
		if err != nil {
			return nil, err
		}
		osName, arch, _ := strings.Cut(p, "/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: osName, Architecture: arch},
		}})
	}
	return idx, nil
}

// DevBaseSummary says, for images built on the dev base, which platforms
// run (the host's node went in) and which keep the minimal base without
// node; "" when no image used the dev base.
func DevBaseSummary(images []Built) string {
	var runs, minimal []string
	seen := map[string]bool{}
	for _, b := range images {
		for _, m := range b.Manifests {
			v, ok := strings.CutPrefix(m.Base, "dev base, ")
			if !ok || seen[m.Platform] {
				continue
			}
			seen[m.Platform] = true
			if v == "no-node" {
				minimal = append(minimal, m.Platform)
			} else {
				runs = append(runs, m.Platform+" ("+v+", runs)")
			}
		}
	}
	if len(runs)+len(minimal) == 0 {
		return ""
	}
	s := "dev base:"
	if len(runs) > 0 {
		s += " host node on " + strings.Join(runs, ", ") + ";"
	}
	if len(minimal) > 0 {
		s += " minimal base without node on " + strings.Join(minimal, ", ") + " (images build, push and sign but do not run)"
	} else {
		s = strings.TrimSuffix(s, ";")
	}
	return s
}
