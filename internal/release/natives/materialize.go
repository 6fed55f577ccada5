package natives

import (
	"context"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/extract"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Options configures Materialize.
type Options struct {
	// LockPath is packaging/<platform>/natives.lock.json (see LockPath).
	LockPath string
	Platform platform.Platform
	// RuntimeDir is the payload's dist/runtime; bin/ and lib/ are filled.
	// Files already there are an error, not overwritten.
	RuntimeDir string
	// CacheDir defaults to home.ReleaseCacheDir()/natives.
	CacheDir string
	// Mirror defaults to $SECOND_RELEASE_MIRROR; set it to "-" for none.
	Mirror string
	Log    *slog.Logger
	// Progress is told each download's bytes; nil shows none.
	Progress progress.Func
	Client   *http.Client
	Retry    Retry
	// Skip builds without natives: RuntimeDir gets empty bin/ and lib/ and
	// the returned map is empty, which the manifest records as "no natives".
	// For rehearsals on machines that cannot reach the pinned sources.
	Skip bool
}

// DefaultCacheDir is the natives cache under the release cache dir.
func DefaultCacheDir() (string, error) {
	d, err := home.ReleaseCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the release cache dir (set $SECOND_RELEASE_CACHE): %w", err)
	}
	return filepath.Join(d, "natives"), nil
}

// mirrorFrom resolves the Options.Mirror convention.
func mirrorFrom(opt string) string {
	switch opt {
	case "-":
		return ""
	case "":
		return os.Getenv(MirrorEnv)
	}
	return opt
}

func (o *Options) fetcher() (*Fetcher, error) {
	cache := o.CacheDir
	if cache == "" {
		var err error
		if cache, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	return &Fetcher{CacheDir: cache, Mirror: mirrorFrom(o.Mirror), Client: o.Client, Log: o.Log, Progress: o.Progress, Retry: o.Retry}, nil
}

// Materialize fills RuntimeDir from the platform's lock and returns the
// manifest entries (name -> version, source, archive sha256). The result
// is checked with binarycheck under the runtime's library rule; any
// violation fails with the full list (a *binarycheck.Error).
func Materialize(ctx context.Context, o Options) (map[string]manifest.Native, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{"bin", "lib"} {
		if err := os.MkdirAll(filepath.Join(o.RuntimeDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("natives: create runtime dir: %w", err)
		}
	}
	if o.Skip {
		log.Warn("building without native runtimes: dist/runtime stays empty and the payload needs mongod/redis-server from elsewhere", "platform", o.Platform.ID)
		return map[string]manifest.Native{}, nil
	}
	lock, err := ReadLock(o.LockPath)
	if err != nil {
		return nil, err
	}
	if lock.Platform != o.Platform.ID {
		return nil, fmt.Errorf("natives: %s is for platform %q, building %q", o.LockPath, lock.Platform, o.Platform.ID)
	}
	f, err := o.fetcher()
	if err != nil {
		return nil, err
	}
	out := map[string]manifest.Native{}
	for _, n := range lock.Natives {
		archive, err := f.Fetch(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("natives for %s: %w", o.Platform.ID, err)
		}
		res, err := extract.File(ctx, archive, extract.Options{Dest: o.RuntimeDir, Members: n.Members})
		if err != nil {
			return nil, fmt.Errorf("natives for %s: unpack %s %s (%s): %w", o.Platform.ID, n.Name, n.Version, fileName(n), err)
		}
		log.Info("native unpacked", "name", n.Name, "version", n.Version, "files", res.Files)
		entry := manifest.Native{Version: n.Version, Source: n.Source, SHA256: n.SHA256}
		if o.Platform.GOOS == "linux" {
			// Homebrew's Linux bottles cannot start until their placeholder
			// interpreter and search paths are replaced, as `brew` does
			// when it pours them.
			dests := make([]string, 0, len(n.Members))
			for _, d := range n.Members {
				dests = append(dests, d)
			}
			rw, err := RelocateELF(o.RuntimeDir, o.Platform, dests)
			if err != nil {
				return nil, fmt.Errorf("natives for %s: %s %s: %w", o.Platform.ID, n.Name, n.Version, err)
			}
			for _, r := range rw {
				log.Info("native relocated", "file", r.File, "field", r.Field, "old", r.Old, "new", r.New)
			}
			entry.Rewrites = rw
		}
		out[n.Name] = entry
	}
	vs, err := binarycheck.Check(o.RuntimeDir, binarycheck.RuntimeOptions(o.Platform, lock.Floors, lock.SystemLibraries))
	if err != nil {
		return nil, fmt.Errorf("natives for %s: check binaries: %w", o.Platform.ID, err)
	}
	if err := binarycheck.AsError(vs); err != nil {
		return nil, fmt.Errorf("natives for %s (%s): %w", o.Platform.ID, o.LockPath, err)
	}
	return out, nil
}

// CheckPayload runs the full binary check (platform, libraries under the
// runtime rule, interpreter, floors) over an assembled payload directory,
// with the floors and system libraries of the platform's lock. It returns a
// *binarycheck.Error listing every violation, or nil.
func CheckPayload(dir, lockPath string, p platform.Platform) error {
	lock, err := ReadLock(lockPath)
	if err != nil {
		return err
	}
	vs, err := binarycheck.Check(dir, binarycheck.PayloadOptions(p, lock.Floors, lock.SystemLibraries))
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	return binarycheck.AsError(vs)
}
