package natives

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/release/extract"
)

// Published feeds Update reads; both record the sha256 of every archive.
const (
	DefaultMongoFeed = "https://downloads.mongodb.org/full.json"
	DefaultBrewAPI   = "https://formulae.brew.sh/api/formula"
)

// Track says how Update finds a newer pin:
//
//	mongodb:<major.minor>              newest production release of that series
//	                                   in MongoDB's feed, same archive naming
//	homebrew:<formula>:<bottle tag>    the formula's stable bottle for that tag
//
// An empty Track means the pin is only ever changed by hand.

// UpdateOptions configures Update.
type UpdateOptions struct {
	LockPath  string
	MongoFeed string // default DefaultMongoFeed
	BrewAPI   string // default DefaultBrewAPI
	Client    *http.Client
	// DryRun reports the changes without writing the lock; the new
	// archives are still fetched (into the cache) to read their members.
	DryRun bool
	Now    func() time.Time
	// CacheDir, Retry and Progress configure fetching the new archives as
	// for a build; CacheDir defaults to the release cache. Mirror, when
	// set, is where they are fetched from instead of their sources (the
	// environment's SECOND_RELEASE_MIRROR is not consulted: it holds the
	// current pins, not the new ones).
	CacheDir string
	Mirror   string
	Retry    Retry
	Progress progress.Func
}

// Change is one pin Update moved.
type Change struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	To     string `json:"to"`
	SHA256 string `json:"sha256"`
	// Members maps the new archive's member paths to their destinations,
	// as read from the archive itself.
	Members map[string]string `json:"members"`
}

// Update resolves newer pins from the published feeds and rewrites the
// lock (unless DryRun). Builds never do this; it is a deliberate step
// whose diff a reviewer reads.
func Update(ctx context.Context, o UpdateOptions) ([]Change, error) {
	if o.MongoFeed == "" {
		o.MongoFeed = DefaultMongoFeed
	}
	if o.BrewAPI == "" {
		o.BrewAPI = DefaultBrewAPI
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 2 * time.Minute}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	lock, err := ReadLock(o.LockPath)
	if err != nil {
		return nil, err
	}
	var mongoFeed *mongoFeedDoc
	var changes []Change
	for i := range lock.Natives {
		n := &lock.Natives[i]
		kind, rest, _ := strings.Cut(n.Track, ":")
		var next *Native
		switch kind {
		case "":
			continue
		case "mongodb":
			if mongoFeed == nil {
				mongoFeed = &mongoFeedDoc{}
				if err := getJSON(ctx, o.Client, o.MongoFeed, mongoFeed); err != nil {
					return nil, fmt.Errorf("update %s: %w", n.Name, err)
				}
			}
			next, err = mongoFeed.next(ctx, *n, rest, o)
		case "homebrew":
			next, err = brewNext(ctx, *n, rest, o)
		default:
			err = fmt.Errorf("unknown track %q (want mongodb:<series> or homebrew:<formula>:<bottle tag>)", n.Track)
		}
		if err != nil {
			return nil, fmt.Errorf("update %s in %s: %w", n.Name, o.LockPath, err)
		}
		if next == nil || next.SHA256 == n.SHA256 {
			continue
		}
		changes = append(changes, Change{Name: n.Name, From: n.Version, To: next.Version, SHA256: next.SHA256, Members: next.Members})
		*n = *next
	}
	if len(changes) == 0 || o.DryRun {
		return changes, nil
	}
	if err := lock.Validate(); err != nil {
		return nil, fmt.Errorf("update %s: the new lock is invalid: %w", o.LockPath, err)
	}
	b, err := lock.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.LockPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", o.LockPath, err)
	}
	return changes, nil
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{URL: url, Code: resp.StatusCode}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 512<<20)).Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	return nil
}

// moved is n at a new version: the archive is fetched (into the cache,
// verified against the published digest) and each member is found in its
// real listing, since publishers rename top folders between releases
// (mongodb-macos-aarch64-8.0.11/ became mongodb-macos-aarch64--8.2.3/).
func moved(ctx context.Context, n Native, version, source, sha, pinSource string, o UpdateOptions) (*Native, error) {
	next := n
	next.Version, next.Source, next.SHA256, next.PinSource = version, source, sha, pinSource
	f := &Fetcher{CacheDir: o.CacheDir, Mirror: o.Mirror, Client: o.Client, Progress: o.Progress, Retry: o.Retry}
	archive, err := f.Fetch(ctx, next)
	if err != nil {
		return nil, err
	}
	entries, err := extract.List(ctx, archive)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", n.Name, version, err)
	}
	next.Members = map[string]string{}
	for _, m := range sortedKeys(n.Members) {
		found, err := matchMember(m, entries)
		if err != nil {
			return nil, fmt.Errorf("%s %s (%s): %w", n.Name, version, fileName(next), err)
		}
		next.Members[found] = n.Members[m]
	}
	return &next, nil
}

// matchMember finds old's counterpart in a new archive: a regular file at
// the same depth whose path ends like old's once leading components (the
// versioned folders) are dropped. The fewest dropped components win, and
// the match must be unique at that level.
func matchMember(old string, entries []extract.Entry) (string, error) {
	parts := strings.Split(old, "/")
	for k := 1; k < len(parts); k++ {
		tail := "/" + strings.Join(parts[k:], "/")
		var hits []string
		for _, e := range entries {
			if e.Regular && strings.Count(e.Name, "/") == len(parts)-1 && strings.HasSuffix(e.Name, tail) {
				hits = append(hits, e.Name)
			}
		}
		switch len(hits) {
		case 0:
			continue
		case 1:
			return hits[0], nil
		default:
			return "", fmt.Errorf("member %s matches several files in the new archive: %s", old, strings.Join(hits, ", "))
		}
	}
	tops := map[string]bool{}
	for _, e := range entries {
		tops[strings.SplitN(e.Name, "/", 2)[0]] = true
	}
	list := make([]string, 0, len(tops))
	for t := range tops {
		list = append(list, t)
	}
	sort.Strings(list)
	return "", fmt.Errorf("no file like %s in the new archive (its top-level entries: %s); edit the lock's members by hand", old, strings.Join(list, ", "))
}

type mongoFeedDoc struct {
	Versions []struct {
		Version           string `json:"version"`
		ProductionRelease bool   `json:"production_release"`
		Downloads         []struct {
			Archive struct {
				URL    string `json:"url"`
				SHA256 string `json:"sha256"`
			} `json:"archive"`
		} `json:"downloads"`
	} `json:"versions"`
}

// next finds the newest production release of the series whose archive
// has the current pin's URL with the version swapped.
func (f *mongoFeedDoc) next(ctx context.Context, n Native, series string, o UpdateOptions) (*Native, error) {
	cur, err := semver.NewVersion(n.Version)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", n.Version, err)
	}
	constraint, err := semver.NewConstraint("~" + series)
	if err != nil {
		return nil, fmt.Errorf("series %q: %w", series, err)
	}
	var best *semver.Version
	var bestURL, bestSHA string
	for _, v := range f.Versions {
		if !v.ProductionRelease {
			continue
		}
		sv, err := semver.NewVersion(v.Version)
		if err != nil || sv.Prerelease() != "" || !constraint.Check(sv) || !sv.GreaterThan(cur) {
			continue
		}
		want := strings.ReplaceAll(n.Source, n.Version, v.Version)
		for _, d := range v.Downloads {
			if d.Archive.URL == want && hexDigest.MatchString(d.Archive.SHA256) && (best == nil || sv.GreaterThan(best)) {
				best, bestURL, bestSHA = sv, want, d.Archive.SHA256
			}
		}
	}
	if best == nil {
		return nil, nil
	}
	pin := fmt.Sprintf("MongoDB release feed %s: archive.sha256 of %s (version %s, production release), read %s",
		o.MongoFeed, bestURL, best.Original(), o.Now().UTC().Format("2006-01-02"))
	return moved(ctx, n, best.Original(), bestURL, bestSHA, pin, o)
}

type brewFormulaDoc struct {
	Versions struct {
		Stable string `json:"stable"`
	} `json:"versions"`
	Revision int `json:"revision"`
	Bottle   struct {
		Stable struct {
			Files map[string]struct {
				URL    string `json:"url"`
				SHA256 string `json:"sha256"`
			} `json:"files"`
		} `json:"stable"`
	} `json:"bottle"`
}

func brewNext(ctx context.Context, n Native, spec string, o UpdateOptions) (*Native, error) {
	formula, tag, ok := strings.Cut(spec, ":")
	if !ok || formula == "" || tag == "" {
		return nil, fmt.Errorf("track %q: want homebrew:<formula>:<bottle tag>", n.Track)
	}
	api := strings.TrimSuffix(o.BrewAPI, "/") + "/" + formula + ".json"
	var doc brewFormulaDoc
	if err := getJSON(ctx, o.Client, api, &doc); err != nil {
		return nil, err
	}
	file, ok := doc.Bottle.Stable.Files[tag]
	if !ok || !hexDigest.MatchString(file.SHA256) {
		return nil, fmt.Errorf("%s has no %s bottle", api, tag)
	}
	// The Cellar directory inside a bottle carries the revision suffix.
	version := doc.Versions.Stable
	if doc.Revision > 0 {
		version = fmt.Sprintf("%s_%d", version, doc.Revision)
	}
	src, err := ParseSource(n.Source, n.SHA256)
	if err != nil || src.Repository == "" {
		return nil, fmt.Errorf("homebrew track needs an oci:// source, have %q", n.Source)
	}
	pin := fmt.Sprintf("Homebrew formula API %s: bottle.stable.files.%s.sha256 (the ghcr.io blob digest), version %s, read %s",
		api, tag, version, o.Now().UTC().Format("2006-01-02"))
	return moved(ctx, n, version, "oci://"+src.Repository+"@sha256:"+file.SHA256, file.SHA256, pin, o)
}
