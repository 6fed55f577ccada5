// Package oci builds the web and worker container images without a Docker
// daemon (go-containerregistry): a base pinned by digest plus one
// deterministic app layer per platform, one index per image, written to an
// OCI layout in dist/oci and pushed from there by digest.
package oci

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/second-inc/second-release/internal/release/platform"
)

// OCI annotation and label keys.
const (
	AnnVersion    = "org.opencontainers.image.version"
	AnnRevision   = "org.opencontainers.image.revision"
	AnnSource     = "org.opencontainers.image.source"
	AnnCreated    = "org.opencontainers.image.created"
	AnnTitle      = "org.opencontainers.image.title"
	AnnBaseName   = "org.opencontainers.image.base.name"
	AnnBaseDigest = "org.opencontainers.image.base.digest"
	AnnRefName    = "org.opencontainers.image.ref.name"
)

// Kind says which app an image runs.
type Kind string

const (
	Web    Kind = "web"
	Worker Kind = "worker"
)

// WritableDirs are the directories the app writes, owned by AppUID in the
// image; everything else can be mounted read-only.
func (k Kind) WritableDirs() []string {
	switch k {
	case Web:
		return []string{"/app/.next/cache"} // Next writes its image/ISR cache here
	case Worker:
		return []string{"/data/workspaces"}
	}
	return nil
}

// ImageSpec is one image to build.
type ImageSpec struct {
	Kind Kind
	Name string // repository name, e.g. second-web
	Port int
	Base Base
}

// BuildOptions configures Build.
type BuildOptions struct {
	// Out is the OCI layout directory (dist/oci); it is replaced.
	Out       string
	Platforms []string // linux/amd64, linux/arm64
	Images    []ImageSpec
	Source    Source
	Version   string
	Revision  string
	SourceURL string
	// Epoch is SOURCE_DATE_EPOCH: every mtime and created time.
	Epoch time.Time
	// MatchLibc retargets a tree to a musl base (nil: RetargetLibc).
	MatchLibc MatchLibcFunc
	Log       *slog.Logger
}

// Built is one image index written to the layout.
type Built struct {
	Name      string             `json:"name"`
	Digest    string             `json:"digest"` // index digest
	Manifests []PlatformManifest `json:"manifests"`
}

// PlatformManifest is one platform's image inside an index.
type PlatformManifest struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	AppLayer  string `json:"appLayer"`
	LayerSize int64  `json:"layerSize"`
	// DepsLayer holds node_modules ("" when the tree has none).
	DepsLayer string `json:"depsLayer,omitempty"`
	DepsSize  int64  `json:"depsSize,omitempty"`
	// Base is the base reference, or for the dev base what it carries
	// ("dev base, node-v20.x.y" or "dev base, no-node").
	Base string `json:"base"`
	// Libc is the base's C library (glibc, musl; "" none), which the
	// native node modules in the image match.
	Libc string `json:"libc,omitempty"`
	// Size is the image's compressed size: config and every layer.
	Size int64 `json:"size"`
}

// Build writes every image of opts.Images for every platform to the layout
// at opts.Out. The same inputs and Epoch give the same index digests.
func Build(ctx context.Context, opts BuildOptions) ([]Built, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Platforms) == 0 {
		return nil, fmt.Errorf("build images: no platforms (images.platforms is empty)")
	}
	tmp, err := os.MkdirTemp("", "second-oci-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// Per platform: fetch the trees once, then build both images from them.
	type perImage struct {
		adds []mutate.IndexAddendum
		ms   []PlatformManifest
	}
	acc := make([]perImage, len(opts.Images))
	for _, plat := range opts.Platforms {
		osName, arch, ok := strings.Cut(plat, "/")
		if !ok {
			return nil, fmt.Errorf("platform %q: want os/arch such as linux/amd64", plat)
		}
		pp, err := platform.FromGo(osName, arch)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", plat, err)
		}
		web, worker, err := opts.Source.Trees(ctx, pp, tmp)
		if err != nil {
			return nil, fmt.Errorf("app trees for %s: %w", plat, err)
		}
		for i, spec := range opts.Images {
			dir := web
			if spec.Kind == Worker {
				dir = worker
			}
			img, pm, err := buildOne(ctx, opts, spec, pp, plat, dir, filepath.Join(tmp, fmt.Sprintf("%s-%s-%s.tar.gz", spec.Name, osName, arch)))
			if err != nil {
				return nil, fmt.Errorf("build %s for %s: %w", spec.Name, plat, err)
			}
			log.Info("image built", "image", spec.Name, "platform", plat, "digest", pm.Digest, "appLayerBytes", pm.LayerSize, "base", pm.Base, "libc", pm.Libc)
			acc[i].ms = append(acc[i].ms, pm)
			acc[i].adds = append(acc[i].adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
				Platform: &v1.Platform{OS: osName, Architecture: arch},
			}})
		}
	}

	if err := os.RemoveAll(opts.Out); err != nil {
		return nil, fmt.Errorf("clear %s: %w", opts.Out, err)
	}
	lp, err := layout.Write(opts.Out, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("create OCI layout %s: %w", opts.Out, err)
	}
	var out []Built
	for i, spec := range opts.Images {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		idx = mutate.AppendManifests(idx, acc[i].adds...)
		idx = mutate.Annotations(idx, opts.annotations(spec.Name)).(v1.ImageIndex)
		d, err := idx.Digest()
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", spec.Name, err)
		}
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
			AnnRefName: spec.Name + ":" + opts.Version,
		})); err != nil {
			return nil, fmt.Errorf("write %s to %s: %w", spec.Name, opts.Out, err)
		}
		log.Info("index written", "image", spec.Name, "digest", d.String(), "layout", opts.Out)
		out = append(out, Built{Name: spec.Name, Digest: d.String(), Manifests: acc[i].ms})
	}
	return out, nil
}

func (o BuildOptions) annotations(title string) map[string]string {
	a := map[string]string{
		AnnVersion: o.Version,
		AnnCreated: o.Epoch.UTC().Format(time.RFC3339),
		AnnTitle:   title,
	}
	if o.Revision != "" {
		a[AnnRevision] = o.Revision
	}
	if o.SourceURL != "" {
		a[AnnSource] = o.SourceURL
	}
	return a
}

func buildOne(ctx context.Context, opts BuildOptions, spec ImageSpec, pp platform.Platform, plat, dir, layerPath string) (v1.Image, PlatformManifest, error) {
	pm := PlatformManifest{Platform: plat}
	base, baseRef, err := spec.Base.Image(ctx, plat)
	if err != nil {
		return nil, pm, err
	}
	pm.Base = baseRef
	if bcf, err := base.ConfigFile(); err == nil && bcf.Config.Labels[DevBaseLabel] != "" {
		pm.Base = "dev base, " + bcf.Config.Labels[DevBaseLabel]
	}
	if pm.Libc, err = BaseLibc(base); err != nil {
		return nil, pm, fmt.Errorf("base %s: %w", pm.Base, err)
	}
	if dir, err = treeForLibc(ctx, opts.MatchLibc, dir, strings.TrimSuffix(layerPath, ".tar.gz")+"-tree", pp, pm.Libc); err != nil {
		return nil, pm, err
	}
	baseMT, err := base.MediaType()
	if err != nil {
		return nil, pm, fmt.Errorf("base media type: %w", err)
	}
	// Keep the base's manifest family: an OCI layer in a Docker v2 manifest
	// is refused by some registries.
	layerMT := types.OCILayer
	if baseMT == types.DockerManifestSchema2 {
		layerMT = types.DockerLayer
	}
	ls := LayerSpec{Dir: dir, Target: "/app", Time: opts.Epoch, MediaType: layerMT}
	cmd := []string{"node", "server.js"}
	env := map[string]string{"NODE_ENV": "production", "PORT": strconv.Itoa(spec.Port), "HOSTNAME": "0.0.0.0"}
	switch spec.Kind {
	case Web:
		ls.WritableDirs = spec.Kind.WritableDirs()
		env["NEXT_TELEMETRY_DISABLED"] = "1"
	case Worker:
		cmd = []string{"node", "worker.mjs"}
		ls.WritableDirs = spec.Kind.WritableDirs()
		env["WORKSPACES_DIR"] = "/data/workspaces"
	default:
		return nil, pm, fmt.Errorf("unknown image kind %q", spec.Kind)
	}
	created := v1.Time{Time: opts.Epoch.UTC()}
	var adds []mutate.Addendum
	// node_modules first, in a layer of its own: a release that changes only
	// the app's code re-uploads only the small app layer.
	if st, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil && st.IsDir() {
		deps := LayerSpec{Dir: dir, Target: "/app", Time: opts.Epoch, MediaType: layerMT, Include: IsDeps}
		layer, err := WriteLayer(deps, strings.TrimSuffix(layerPath, ".tar.gz")+"-deps.tar.gz")
		if err != nil {
			return nil, pm, err
		}
		if pm.DepsLayer, pm.DepsSize, err = describe(layer); err != nil {
			return nil, pm, err
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{
			Created: created, CreatedBy: "second release images: " + string(spec.Kind) + " node_modules",
		}})
	}
	ls.Include = func(rel string) bool { return !IsDeps(rel) }
	layer, err := WriteLayer(ls, layerPath)
	if err != nil {
		return nil, pm, err
	}
	if pm.AppLayer, pm.LayerSize, err = describe(layer); err != nil {
		return nil, pm, err
	}
	adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{
		Created: created, CreatedBy: "second release images: " + string(spec.Kind) + " app",
	}})
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, pm, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, pm, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.Config.User = fmt.Sprintf("%d:%d", AppUID, AppGID)
	cf.Config.WorkingDir = "/app"
	cf.Config.Env = mergeEnv(cf.Config.Env, env)
	cf.Config.Cmd = cmd
	cf.Config.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", spec.Port): {}}
	labels := map[string]string{}
	for k, v := range cf.Config.Labels {
		labels[k] = v
	}
	for k, v := range opts.annotations(spec.Name) {
		labels[k] = v
	}
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, pm, err
	}
	anns := opts.annotations(spec.Name)
	if baseRef != "" {
		if n, d, ok := strings.Cut(baseRef, "@"); ok {
			anns[AnnBaseName], anns[AnnBaseDigest] = n, d
		}
	}
	img = mutate.Annotations(img, anns).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		return nil, pm, err
	}
	pm.Digest = d.String()
	if pm.Size, err = imageSize(img); err != nil {
		return nil, pm, err
	}
	return img, pm, nil
}

// imageSize is what a pull downloads: config plus compressed layers.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func describe(l v1.Layer) (string, int64, error) {
	d, err := l.Digest()
	if err != nil {
		return "", 0, err
	}
	n, err := l.Size()
	return d.String(), n, err
}

// mergeEnv overrides base KEY=VALUE entries with set, keeping the base order
// and appending new keys sorted (deterministic config bytes).
func mergeEnv(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	done := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := set[k]; ok {
			out = append(out, k+"="+v)
			done[k] = true
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+set[k])
	}
	return out
}
