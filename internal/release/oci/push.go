package oci

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PushOptions configures Push.
type PushOptions struct {
	Layout string // dist/oci
	// Prefix is the repository prefix, e.g. ghcr.io/second-inc or
	// 127.0.0.1:5000/second; each image goes to <Prefix>/<name>.
	Prefix  string
	Version string
	// Transport is the base HTTP transport (nil: remote.DefaultTransport).
	Transport http.RoundTripper
	Log       *slog.Logger
	// Progress, when set, is told the bytes uploaded so far of each image
	// (blobs the registry already has count as done).
	Progress func(image string, done, total int64)
}

// Pushed is one image index in the registry.
type Pushed struct {
	Name       string   `json:"name"`
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Ref        string   `json:"ref"` // repository@digest
	Tags       []string `json:"tags"`
	// BlobBytes were uploaded for this image (0 when the registry already had
	// every layer and config).
	BlobBytes int64 `json:"blobBytes"`
}

// RemoteOptions are the ggcr options every registry call uses: the caller's
// context, the default keychain (docker config, cred helpers) and transport.
func RemoteOptions(ctx context.Context, rt http.RoundTripper) []remote.Option {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(rt)}
}

// Push uploads every index in the layout by digest, then tags it with the
// version, and with latest when the version is stable and the highest one in
// the repository. ggcr checks each blob's existence first, so layers the
// registry already has are not uploaded again.
func Push(ctx context.Context, opts PushOptions) ([]Pushed, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Prefix == "" {
		return nil, fmt.Errorf("push images: no repository prefix: pass --push REPO_PREFIX or set images.repository")
	}
	lp, err := layout.FromPath(opts.Layout)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s (run `release images` first): %w", opts.Layout, err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", opts.Layout, err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", opts.Layout, err)
	}
	var out []Pushed
	for _, desc := range im.Manifests {
		imgName, tag, ok := strings.Cut(desc.Annotations[AnnRefName], ":")
		if !ok || !desc.MediaType.IsIndex() {
			continue
		}
		if opts.Version != "" && tag != opts.Version {
			return nil, fmt.Errorf("%s holds %s:%s, not version %s: rerun `release images`", opts.Layout, imgName, tag, opts.Version)
		}
		idx, err := root.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("read %s from %s: %w", imgName, opts.Layout, err)
		}
		p, err := pushIndex(ctx, opts, imgName, tag, idx)
		if err != nil {
			return nil, err
		}
		log.Info("image pushed", "ref", p.Ref, "tags", strings.Join(p.Tags, ","), "blobBytesUploaded", p.BlobBytes)
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no images: run `release images` first", opts.Layout)
	}
	return out, nil
}

func pushIndex(ctx context.Context, opts PushOptions, imgName, version string, idx v1.ImageIndex) (Pushed, error) {
	repoStr := strings.TrimSuffix(opts.Prefix, "/") + "/" + imgName
	repo, err := name.NewRepository(repoStr)
	if err != nil {
		return Pushed{}, fmt.Errorf("--push %q: %q is not a repository: %w", opts.Prefix, repoStr, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return Pushed{}, err
	}
	counter := &CountingTransport{Base: opts.Transport}
	ropts := RemoteOptions(ctx, counter)
	ref := repo.Digest(d.String())
	var drained chan struct{}
	writeOpts := ropts
	if opts.Progress != nil {
		// ggcr sends updates while it writes and closes the channel at the
		// end; MultiWrite, unlike WriteIndex, closes it once for a whole index.
		updates := make(chan v1.Update, 64)
		drained = make(chan struct{})
		go func() {
			defer close(drained)
			for u := range updates {
				if u.Error == nil {
					opts.Progress(imgName, u.Complete, u.Total)
				}
			}
		}()
		// Only for this write: ggcr closes the channel when it ends.
		writeOpts = append(append([]remote.Option{}, ropts...), remote.WithProgress(updates))
	}
	err = remote.MultiWrite(map[name.Reference]remote.Taggable{ref: idx}, writeOpts...)
	if drained != nil {
		<-drained
	}
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", ref, err)
	}
	p := Pushed{Name: imgName, Repository: repo.String(), Digest: d.String(), Ref: ref.String()}
	tags := []string{version}
	latest, err := shouldTagLatest(repo, version, ropts)
	if err != nil {
		return p, err
	}
	if latest {
		tags = append(tags, "latest")
	}
	for _, t := range tags {
		if err := remote.Tag(repo.Tag(t), idx, ropts...); err != nil {
			return p, fmt.Errorf("tag %s:%s: %w", repo, t, err)
		}
	}
	p.Tags = tags
	p.BlobBytes = counter.BlobBytes()
	return p, nil
}

// shouldTagLatest: only a stable version that is at least every stable
// semver tag already in the repository moves latest.
func shouldTagLatest(repo name.Repository, version string, ropts []remote.Option) (bool, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v"))
	if err != nil || v.Prerelease() != "" {
		return false, nil
	}
	tags, err := remote.List(repo, ropts...)
	if err != nil {
		if te, ok := err.(*transport.Error); ok && te.StatusCode == http.StatusNotFound {
			return true, nil
		}
		return false, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	return IsHighest(version, tags), nil
}

// IsHighest reports whether version is stable and not lower than any stable
// semver among tags (other tags are ignored).
func IsHighest(version string, tags []string) bool {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v"))
	if err != nil || v.Prerelease() != "" {
		return false
	}
	for _, t := range tags {
		tv, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
		if err != nil || tv.Prerelease() != "" {
			continue
		}
		if tv.GreaterThan(v) {
			return false
		}
	}
	return true
}

// CountingTransport counts the request body bytes sent through it; blob
// bytes are those sent to /blobs/uploads/ (layers and configs), the rest are
// manifests. Safe for concurrent use (ggcr uploads layers in parallel).
type CountingTransport struct {
	Base  http.RoundTripper
	blobs atomic.Int64
	all   atomic.Int64
	mu    sync.Mutex
	reqs  map[string]int
}

// RoundTrip implements http.RoundTripper.
func (c *CountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := c.Base
	if base == nil {
		base = remote.DefaultTransport
	}
	c.mu.Lock()
	if c.reqs == nil {
		c.reqs = map[string]int{}
	}
	c.reqs[r.Method]++
	c.mu.Unlock()
	if r.Body != nil && r.Body != http.NoBody {
		blob := strings.Contains(r.URL.Path, "/blobs/uploads/")
		r2 := r.Clone(r.Context())
		r2.Body = &countingBody{rc: r.Body, add: func(n int64) {
			c.all.Add(n)
			if blob {
				c.blobs.Add(n)
			}
		}}
		return base.RoundTrip(r2)
	}
	return base.RoundTrip(r)
}

// BlobBytes is the number of layer/config bytes uploaded so far.
func (c *CountingTransport) BlobBytes() int64 { return c.blobs.Load() }

// Bytes is every request body byte sent so far.
func (c *CountingTransport) Bytes() int64 { return c.all.Load() }

// Requests counts requests per HTTP method.
func (c *CountingTransport) Requests() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.reqs {
		out[k] = v
	}
	return out
}

type countingBody struct {
	rc  io.ReadCloser
	add func(int64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// PinnedRef is <prefix>/<name>@<digest>, the form compose files and
// `release verify` want.
func PinnedRef(prefix, imageName, digest string) string {
	return strings.TrimSuffix(prefix, "/") + "/" + imageName + "@" + digest
}
