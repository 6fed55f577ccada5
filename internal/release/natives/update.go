package natives

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
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
	DryRun    bool
	Now       func() time.Time
}

// Change is one pin Update moved.
type Change struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	To     string `json:"to"`
	SHA256 string `json:"sha256"`
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
			next, err = mongoFeed.next(*n, rest, o)
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
		changes = append(changes, Change{Name: n.Name, From: n.Version, To: next.Version, SHA256: next.SHA256})
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

// renamed moves a pin to a new version: the version string in member
// paths is replaced, so archive layouts that embed it keep working.
func renamed(n Native, version, source, sha, pinSource string) *Native {
	next := n
	next.Version, next.Source, next.SHA256, next.PinSource = version, source, sha, pinSource
	next.Members = map[string]string{}
	for m, d := range n.Members {
		next.Members[strings.ReplaceAll(m, n.Version, version)] = d
	}
	return &next
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
func (f *mongoFeedDoc) next(n Native, series string, o UpdateOptions) (*Native, error) {
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
	return renamed(n, best.Original(), bestURL, bestSHA, pin), nil
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
	return renamed(n, version, "oci://"+src.Repository+"@sha256:"+file.SHA256, file.SHA256, pin), nil
}
