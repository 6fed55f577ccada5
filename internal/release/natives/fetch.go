package natives

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// MirrorEnv names the air-gap mirror: a URL prefix or a local directory,
// either laid out as <mirror>/sha256/<hex>.
const MirrorEnv = "SECOND_RELEASE_MIRROR"

// Retry is the backoff for transient failures (network errors, 408, 429, 5xx).
type Retry struct {
	Attempts int           // total tries; default 5
	Base     time.Duration // first wait, doubled each time; default 1s
	Max      time.Duration // cap on one wait; default 30s
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.Base <= 0 {
		r.Base = time.Second
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	return r
}

// Fetcher downloads pinned archives into a cache keyed by sha256.
type Fetcher struct {
	// CacheDir holds verified archives as sha256/<hex> (the mirror layout,
	// so a cache dir can serve as a mirror).
	CacheDir string
	// Mirror, when set, is the only place anything is fetched from.
	Mirror string
	// Client is used for HTTP and OCI requests (default: a client with
	// header timeouts on http.DefaultTransport's settings).
	Client *http.Client
	Log    *slog.Logger
	// Progress is told each download's bytes; nil shows none.
	Progress progress.Func
	Retry    Retry
}

// MismatchError is a download whose bytes are not the pinned ones.
type MismatchError struct {
	File, Source, Expected, Actual string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s (from %s): expected %s, actual %s; the file was deleted — check the lock's pin or the mirror's copy",
		e.File, e.Source, e.Expected, e.Actual)
}

// CachePath is where a verified archive with this digest is kept.
func CachePath(cacheDir, sha string) string {
	return filepath.Join(cacheDir, "sha256", sha)
}

// progressName is what a download is called on a progress line: the
// archive's file name, or for a registry blob (a Homebrew bottle) its name,
// version and kind, without the digest that fills a line.
func progressName(n Native) string {
	if strings.HasPrefix(n.Source, "oci://") {
		return n.Name + "-" + n.Version + " bottle"
	}
	return fileName(n)
}

// fileName is a human name for a source, used in messages.
func fileName(n Native) string {
	if src, err := ParseSource(n.Source, n.SHA256); err == nil && src.URL != "" {
		if u, err := url.Parse(src.URL); err == nil && path.Base(u.Path) != "/" {
			return path.Base(u.Path)
		}
	}
	return n.Name + "-" + n.Version + " (" + n.Source + ")"
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}

// Fetch returns the path of n's archive in the cache, downloading and
// verifying it first when needed. A cache hit makes no request.
func (f *Fetcher) Fetch(ctx context.Context, n Native) (string, error) {
	if f.CacheDir == "" {
		return "", errors.New("fetch natives: no cache directory")
	}
	src, err := ParseSource(n.Source, n.SHA256)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", n.Name, err)
	}
	dst := CachePath(f.CacheDir, n.SHA256)
	if sum, err := hashFile(dst); err == nil {
		if sum == n.SHA256 {
			f.log().Debug("natives cache hit", "name", n.Name, "sha256", n.SHA256)
			return dst, nil
		}
		f.log().Warn("cached natives archive is corrupt; fetching again", "path", dst, "actual", sum)
		os.Remove(dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	open, from := f.opener(src, n)
	r := f.Retry.withDefaults()
	wait := r.Base
	for attempt := 1; ; attempt++ {
		err = f.download(ctx, n, open, from, dst)
		if err == nil {
			return dst, nil
		}
		var mm *MismatchError
		if errors.As(err, &mm) || !transient(err) || attempt >= r.Attempts || ctx.Err() != nil {
			if attempt > 1 && !errors.As(err, &mm) {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			var dns *net.DNSError
			if f.Mirror == "" && errors.As(err, &dns) {
				err = fmt.Errorf("%w; without network access, fill a mirror with `release natives fetch --to DIR` elsewhere and set %s=DIR", err, MirrorEnv)
			}
			return "", fmt.Errorf("fetch %s %s: %w", n.Name, n.Version, err)
		}
		f.log().Warn("transient fetch failure; retrying", "name", n.Name, "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("fetch %s: %w", n.Name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, r.Max)
	}
}

// opener returns how to open n's bytes (and a description of where from),
// honouring the mirror.
func (f *Fetcher) opener(src Source, n Native) (func(context.Context) (io.ReadCloser, int64, error), string) {
	if f.Mirror != "" {
		if u, err := url.Parse(f.Mirror); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			target := strings.TrimSuffix(f.Mirror, "/") + "/sha256/" + n.SHA256
			return func(ctx context.Context) (io.ReadCloser, int64, error) { return f.httpGet(ctx, target) }, "mirror " + target
		}
		p := CachePath(f.Mirror, n.SHA256)
		return func(context.Context) (io.ReadCloser, int64, error) {
			fh, err := os.Open(p)
			if errors.Is(err, os.ErrNotExist) {
				return nil, 0, fmt.Errorf("mirror %s has no %s for %s %s: fill it with `release natives fetch --to %s`", f.Mirror, "sha256/"+n.SHA256, n.Name, n.Version, f.Mirror)
			}
			if err != nil {
				return nil, 0, err
			}
			st, err := fh.Stat()
			if err != nil {
				fh.Close()
				return nil, 0, err
			}
			return fh, st.Size(), nil
		}, "mirror " + p
	}
	if src.URL != "" {
		return func(ctx context.Context) (io.ReadCloser, int64, error) { return f.httpGet(ctx, src.URL) }, src.URL
	}
	return func(ctx context.Context) (io.ReadCloser, int64, error) { return f.ociBlob(ctx, src) }, n.Source
}

func (f *Fetcher) download(ctx context.Context, n Native, open func(context.Context) (io.ReadCloser, int64, error), from, dst string) error {
	body, size, err := open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return fmt.Errorf("create temporary file in cache: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	var w io.Writer = io.MultiWriter(tmp, h)
	count := progress.NewCounter(f.Progress, progressName(n), size)
	w = io.MultiWriter(w, count)
	f.log().Info("fetching native", "name", n.Name, "version", n.Version, "from", from)
	if _, err := io.Copy(w, body); err != nil {
		count.Fail()
		return fmt.Errorf("download from %s: %w", from, err)
	}
	count.Done()
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != n.SHA256 {
		return &MismatchError{File: fileName(n), Source: from, Expected: n.SHA256, Actual: got}
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("store in cache: %w", err)
	}
	keep = true
	return nil
}

// statusError is a non-2xx HTTP answer.
type statusError struct {
	URL  string
	Code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

func (f *Fetcher) httpGet(ctx context.Context, target string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, 0, &statusError{URL: target, Code: resp.StatusCode}
	}
	return resp.Body, resp.ContentLength, nil
}

func (f *Fetcher) ociBlob(ctx context.Context, src Source) (io.ReadCloser, int64, error) {
	ref, err := name.NewDigest(src.Repository + "@" + src.Digest)
	if err != nil {
		return nil, 0, fmt.Errorf("parse OCI reference: %w", err)
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(authn.Anonymous),
		// Our own loop retries, so the library must not multiply attempts.
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	if c := f.client(); c.Transport != nil {
		opts = append(opts, remote.WithTransport(c.Transport))
	}
	layer, err := remote.Layer(ref, opts...)
	if err != nil {
		return nil, 0, fmt.Errorf("OCI blob %s: %w", ref, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, 0, fmt.Errorf("OCI blob %s: %w", ref, err)
	}
	size, err := layer.Size()
	if err != nil {
		size = -1
	}
	return rc, size, nil
}

// transient reports errors worth retrying: network failures, cut-off
// bodies and the HTTP statuses servers use for "try again".
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return retryableStatus(se.Code)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return retryableStatus(te.StatusCode)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // an unknown host stays unknown: fail at once (offline or air-gapped)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func hashFile(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
