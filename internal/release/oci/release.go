package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/platform"
)

// ReleaseOptions is `release images` as a function: what the command, `cut`
// and `rehearse` share. Zero values take release.yaml and dist/release.json.
type ReleaseOptions struct {
	Config *config.Config
	// Dist holds release.json (default: the config's out dir).
	Dist string
	// Layout is the OCI layout to write (default: <Dist>/oci).
	Layout    string
	Platforms []string // default: images.platforms
	// Web and Worker take the trees from directories (retargeted per
	// platform) instead of the linux payloads listed in release.json.
	Web, Worker string
	// Version overrides release.json's (required without release.json).
	Version string
	// WebBase and WorkerBase override images.*.base (pinned by digest).
	WebBase, WorkerBase string
	// DevBase builds on DevBase where no base is flagged; DevNode is its node
	// binary for the host platform ("" : node on PATH).
	DevBase bool
	DevNode string
	// Push is the repository prefix to push to ("" : build only).
	Push string
	// NoRecord leaves release.json alone (rehearsals on a throwaway base).
	NoRecord bool
	Log      *slog.Logger
	// PushProgress, when set, is told each image's upload progress.
	PushProgress func(image string, done, total int64)
}

// ReleaseResult is what BuildRelease built and pushed.
type ReleaseResult struct {
	Version string   `json:"version"`
	Layout  string   `json:"layout"`
	Images  []Built  `json:"images"`
	Pushed  []Pushed `json:"pushed,omitempty"`
}

// BuildRelease builds both images for the release in dist, records them in
// release.json and pushes them when asked.
func BuildRelease(ctx context.Context, o ReleaseOptions) (*ReleaseResult, error) {
	cfg := o.Config
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dist := o.Dist
	if dist == "" {
		dist = cfg.OutDir()
	}
	dist, err := filepath.Abs(dist)
	if err != nil {
		return nil, err
	}
	rel, err := artifact.Read(dist)
	if err != nil {
		if o.Version == "" || o.Web == "" {
			return nil, fmt.Errorf("%w (or pass --version with --web and --worker)", err)
		}
		rel = &artifact.Release{Version: o.Version}
	}
	if o.Version != "" {
		rel.Version = o.Version
	}
	epoch, err := imagesEpoch(rel)
	if err != nil {
		return nil, err
	}
	rel.SourceDateEpoch = epoch.Unix()
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = cfg.Images.Platforms
	}
	var src Source = PayloadSource{Dist: dist, Release: rel}
	if o.Web != "" || o.Worker != "" {
		if o.Web == "" || o.Worker == "" {
			return nil, errors.New("--web and --worker go together")
		}
		src = DirSource{Web: o.Web, Worker: o.Worker, Retarget: func(ctx context.Context, dir string, p platform.Platform) error {
			_, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dir, Target: p, Log: log})
			return err
		}}
	}
	webBase, err := PickBase("images.web.base", "--web-base", cfg.Images.Web.Base, o.WebBase, o.devBase())
	if err != nil {
		return nil, err
	}
	workerBase, err := PickBase("images.worker.base", "--worker-base", cfg.Images.Worker.Base, o.WorkerBase, o.devBase())
	if err != nil {
		return nil, err
	}
	layoutDir := o.Layout
	if layoutDir == "" {
		layoutDir = filepath.Join(dist, "oci")
	}
	built, err := Build(ctx, BuildOptions{
		Out: layoutDir, Platforms: platforms, Source: src,
		Version: rel.Version, Revision: rel.Commit, SourceURL: cfg.Images.Source, Epoch: epoch, Log: log,
		Images: []ImageSpec{
			{Kind: Web, Name: cfg.Images.Web.Name, Port: cfg.Images.Web.Port, Base: webBase},
			{Kind: Worker, Name: cfg.Images.Worker.Name, Port: cfg.Images.Worker.Port, Base: workerBase},
		},
	})
	if err != nil {
		return nil, err
	}
	if !o.NoRecord {
		if err := os.MkdirAll(dist, 0o755); err != nil {
			return nil, err
		}
		if err := Record(dist, layoutDir, rel, built); err != nil {
			return nil, err
		}
	}
	res := &ReleaseResult{Version: rel.Version, Layout: layoutDir, Images: built}
	if o.Push != "" {
		if res.Pushed, err = Push(ctx, PushOptions{Layout: layoutDir, Prefix: o.Push, Version: rel.Version, Log: log, Progress: o.PushProgress}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// imagesEpoch: $SOURCE_DATE_EPOCH, else the one `release build` recorded.
func imagesEpoch(rel *artifact.Release) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds", s)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if rel.SourceDateEpoch == 0 {
		return time.Time{}, errors.New("no SOURCE_DATE_EPOCH: set it (e.g. to the commit time) or run `release build` first")
	}
	return time.Unix(rel.SourceDateEpoch, 0).UTC(), nil
}

func (o ReleaseOptions) devBase() *DevBase {
	if !o.DevBase {
		return nil
	}
	return &DevBase{Node: o.DevNode}
}

// PickBase chooses an image's base: the flag, else dev when set, else
// release.yaml; a tag-only reference is refused naming its source.
func PickBase(field, flag, fromConfig, fromFlag string, dev *DevBase) (Base, error) {
	ref := fromConfig
	switch {
	case fromFlag != "":
		ref = fromFlag
	case dev != nil:
		// --dev-base wins over the configured base (release.yaml has pinned
		// defaults), so offline rehearsals never reach for a public registry.
		return *dev, nil
	}
	switch {
	case ref != "" && !digestPinned(ref):
		src := field
		if fromFlag != "" {
			src = flag
		}
		return nil, fmt.Errorf("%s %q is not pinned by digest: write it as name@sha256:<64 hex> (a tag can move under a release)", src, ref)
	case ref != "":
		cacheDir, _ := home.OCILayerCacheDir()               // no cache dir: download every time
		return RemoteBase{Ref: ref, CacheDir: cacheDir}, nil // RemoteBase checks the digest again when it fetches
	default:
		return nil, fmt.Errorf("%s is empty: set it in %s to an image pinned by digest, e.g. docker.io/library/node:20-alpine@sha256:<digest> "+
			"with the digest from `skopeo inspect --format '{{.Digest}}' docker://docker.io/library/node:20-alpine`, or pass %s; "+
			"for an offline rehearsal pass --dev-base (a base made here: the host's node on the host platform, no node elsewhere)", field, config.FileName, flag)
	}
}

func digestPinned(ref string) bool {
	i := strings.LastIndex(ref, "@")
	return i > 0 && len(ref)-i-1 == len("sha256:")+64 && strings.HasPrefix(ref[i+1:], "sha256:")
}
