// Package standin synthesizes a natives mirror for tests and offline
// rehearsals: archives shaped exactly like the upstream ones (MongoDB's
// mongodb-linux-<arch>-ubuntu<release>-<v>.tgz, Homebrew's Linux bottles of
// redis and openssl@3 with Homebrew's placeholder interpreter and RUNPATH)
// made from real binaries of this host, laid out as <dir>/sha256/<hex> (what
// SECOND_RELEASE_MIRROR reads), plus locks pinning their digests under
// <dir>/locks/<platform>/natives.lock.json (what --natives-locks reads).
// Nothing it writes is an upstream artifact; every lock says so.
package standin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/second-inc/second-release/internal/release/natives"
	"github.com/second-inc/second-release/internal/release/natives/bottle"
	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/platform"
)

// LocksDir is where Synthesize writes the locks, under its Dir.
const LocksDir = "locks"

// Options says what to make the stand-ins from.
type Options struct {
	// Dir receives sha256/<hex>, index.json and locks/<platform>/natives.lock.json.
	Dir      string
	Platform platform.Platform // linux-x64 or linux-arm64; the host's arch
	// RedisServer is a real redis-server linking libssl.so.3 and libcrypto.so.3.
	RedisServer string
	// RedisOrigin says where RedisServer came from (e.g. "Debian source
	// redis 7.0.15-1~deb12u10"), for the locks and the summary.
	RedisOrigin string
	// Mongod is a real mongod or a stand-in answering `--version` like one.
	Mongod string
	// OpenSSLDir holds libssl.so.3 and libcrypto.so.3; default: the host's
	// library directories for the platform's arch.
	OpenSSLDir string
	// BaseLock is the committed lock whose floors and system libraries the
	// stand-in lock keeps (raised when the host's binaries need a newer
	// glibc); empty: no floors.
	BaseLock string
	// Patchelf puts the placeholders in; default patchelf on PATH.
	Patchelf string
	// Epoch is every archive entry's mtime (default 2000-01-01), so equal
	// inputs give equal digests.
	Epoch time.Time
}

// Result is what Synthesize wrote.
type Result struct {
	Mirror   string // Options.Dir: SECOND_RELEASE_MIRROR
	LocksDir string // Dir/locks: --natives-locks
	LockPath string // the platform's lock
	Lock     *natives.Lock
	// Sources names what the stand-ins were made from, for loud output.
	Sources []string
}

// Summary is the line callers print, so nobody mistakes the result for upstream natives.
func (r *Result) Summary() string {
	return "stand-in natives synthesized from " + strings.Join(r.Sources, ", ") + " (NOT the pinned upstream archives)"
}

var archName = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

var libDirs = map[string][]string{
	"amd64": {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64"},
	"arm64": {"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64"},
}

// Synthesize writes the stand-in archives and the platform's lock.
func Synthesize(ctx context.Context, o Options) (*Result, error) {
	patchelf, err := checkOptions(&o)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "standin-natives-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	v, err := hostVersions(ctx, o)
	if err != nil {
		return nil, err
	}
	lock := &natives.Lock{Schema: 1, Platform: o.Platform.ID}
	mongoStem, err := applyBaseLock(o, lock)
	if err != nil {
		return nil, err
	}
	res := &Result{Mirror: o.Dir, LocksDir: filepath.Join(o.Dir, LocksDir)}
	res.Sources = []string{
		fmt.Sprintf("redis-server %s (%s)", v.redis, originOr(o.RedisOrigin, o.RedisServer)),
		fmt.Sprintf("OpenSSL %s (%s)", v.ssl, v.sslDir),
		fmt.Sprintf("mongod %s (%s)", v.mongo, o.Mongod),
	}
	var newestGlibc string
	for _, a := range archiveSpecs(o, v, mongoStem) {
		n, glibc, err := buildArchive(ctx, o, a, work, patchelf)
		if err != nil {
			return nil, err
		}
		if newer(glibc, newestGlibc) {
			newestGlibc = glibc
		}
		n.PinSource = "stand-in synthesized on this machine from " + strings.Join(res.Sources, ", ") + "; not an upstream pin"
		n.Note = "stand-in for tests and offline rehearsals only: never publish a payload built from it"
		lock.Natives = append(lock.Natives, n)
	}
	if newer(newestGlibc, lock.Floors.GLIBC) && lock.Floors.GLIBC != "" {
		// The host's binaries set the floor of a payload built from them.
		lock.Floors.GLIBC = newestGlibc
	}
	if err := writeLock(res, o, lock); err != nil {
		return nil, err
	}
	return res, nil
}

// checkOptions refuses what Synthesize cannot make, fills in the defaults
// and returns the patchelf to run.
func checkOptions(o *Options) (string, error) {
	if o.Platform.GOOS != "linux" || archName[o.Platform.GOARCH] == "" {
		return "", fmt.Errorf("stand-in natives: only linux-x64 and linux-arm64 are supported, not %q", o.Platform.ID)
	}
	if o.Dir == "" || o.RedisServer == "" || o.Mongod == "" {
		return "", errors.New("stand-in natives: Dir, RedisServer and Mongod are required")
	}
	patchelf := o.Patchelf
	if patchelf == "" {
		p, err := exec.LookPath("patchelf")
		if err != nil {
			return "", errors.New("stand-in natives: patchelf not found on PATH (apt-get install patchelf; scripts/standin-natives installs it)")
		}
		patchelf = p
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return patchelf, nil
}

// versions are what the host's binaries are.
type versions struct {
	redis, mongo, ssl string
	sslDir            string // holds libssl.so.3 and libcrypto.so.3
}

// hostVersions asks redis-server and mongod their versions and reads
// OpenSSL's from libcrypto.
func hostVersions(ctx context.Context, o Options) (versions, error) {
	var v versions
	var err error
	if v.redis, err = versionOf(ctx, o.RedisServer, `v=(\d+\.\d+\.\d+)`); err != nil {
		return v, err
	}
	if v.mongo, err = versionOf(ctx, o.Mongod, `db version v(\d+\.\d+\.\d+\S*)`); err != nil {
		return v, err
	}
	if v.sslDir, err = findOpenSSL(o.OpenSSLDir, o.Platform.GOARCH); err != nil {
		return v, err
	}
	crypto, err := os.ReadFile(filepath.Join(v.sslDir, "libcrypto.so.3"))
	if err != nil {
		return v, fmt.Errorf("stand-in natives: %w", err)
	}
	m := regexp.MustCompile(`OpenSSL (3\.\d+\.\d+)`).FindSubmatch(crypto)
	if m == nil {
		return v, fmt.Errorf("stand-in natives: no OpenSSL 3 version string in %s", filepath.Join(v.sslDir, "libcrypto.so.3"))
	}
	v.ssl = string(m[1])
	return v, nil
}

// applyBaseLock copies the committed lock's floors and system libraries
// into lock and returns MongoDB's folder naming, from the committed pin
// when there is one (mongodb-linux-x86_64-ubuntu2404-8.2.6/bin/mongod),
// else the ubuntu2204 build's.
func applyBaseLock(o Options, lock *natives.Lock) (string, error) {
	mongoStem := fmt.Sprintf("mongodb-linux-%s-ubuntu2204", archName[o.Platform.GOARCH])
	if o.BaseLock == "" {
		return mongoStem, nil
	}
	base, err := natives.ReadLock(o.BaseLock)
	if err != nil {
		return "", err
	}
	lock.Floors, lock.SystemLibraries = base.Floors, base.SystemLibraries
	for _, n := range base.Natives {
		for m := range n.Members {
			top, _, _ := strings.Cut(m, "/")
			if stem, ok := strings.CutSuffix(top, "-"+n.Version); ok && n.Name == "mongod" {
				mongoStem = stem
			}
		}
	}
	return mongoStem, nil
}

// member is one binary of an archive: where it comes from, its path in
// the archive, where the payload puts it and the placeholders it gets.
type member struct{ from, rel, dest, interp, runpath string }

// archiveSpec is one stand-in archive.
type archiveSpec struct {
	name, version, source string
	files                 []member
	extra                 map[string]string // small text files, as upstream archives carry them
}

// archiveSpecs lays out the three archives the way upstream does.
func archiveSpecs(o Options, v versions, mongoStem string) []archiveSpec {
	mongoTop := mongoStem + "-" + v.mongo
	redisV, sslV, sslDir := v.redis, v.ssl, v.sslDir
	return []archiveSpec{
		{
			name: "mongod", version: v.mongo,
			source: fmt.Sprintf("https://standin.invalid/fastdl.mongodb.org/linux/%s.tgz", mongoTop),
			files:  []member{{from: o.Mongod, rel: mongoTop + "/bin/mongod", dest: "bin/mongod"}},
			extra:  map[string]string{mongoTop + "/README": "Stand-in for MongoDB's archive, synthesized for tests and offline rehearsals.\n"},
		},
		{
			name: "redis", version: redisV, source: "oci://standin.invalid/homebrew/core/redis",
			files: []member{{from: o.RedisServer, rel: "redis/" + redisV + "/bin/redis-server", dest: "bin/redis-server",
				interp: bottle.Interpreter, runpath: bottle.RedisRunpath}},
			extra: map[string]string{"redis/" + redisV + "/INSTALL_RECEIPT.json": `{"stand_in":true,"source_modified_time":0}` + "\n"},
		},
		{
			name: "openssl", version: sslV, source: "oci://standin.invalid/homebrew/core/openssl/3",
			files: []member{
				{from: filepath.Join(sslDir, "libcrypto.so.3"), rel: "openssl@3/" + sslV + "/lib/libcrypto.so.3", dest: "lib/libcrypto.so.3", runpath: bottle.LibRunpath},
				{from: filepath.Join(sslDir, "libssl.so.3"), rel: "openssl@3/" + sslV + "/lib/libssl.so.3", dest: "lib/libssl.so.3", runpath: bottle.LibRunpath},
			},
			extra: map[string]string{"openssl@3/" + sslV + "/INSTALL_RECEIPT.json": `{"stand_in":true,"source_modified_time":0}` + "\n"},
		},
	}
}

// buildArchive stages one archive's files under work, writes the archive
// into o.Dir and returns its pin (without PinSource and Note) and the
// newest glibc symbol version its binaries need.
func buildArchive(ctx context.Context, o Options, a archiveSpec, work, patchelf string) (natives.Native, string, error) {
	tree := filepath.Join(work, a.name)
	members := map[string]string{}
	var newestGlibc string
	for _, f := range a.files {
		dst := filepath.Join(tree, filepath.FromSlash(f.rel))
		if err := copyFile(f.from, dst, 0o755); err != nil {
			return natives.Native{}, "", fmt.Errorf("stand-in natives: %w", err)
		}
		if err := bottle.Placeholders(ctx, patchelf, work, dst, f.interp, f.runpath); err != nil {
			return natives.Native{}, "", fmt.Errorf("stand-in natives: %w", err)
		}
		if v, err := newestGLIBC(dst); err != nil {
			return natives.Native{}, "", fmt.Errorf("stand-in natives: read %s: %w", f.from, err)
		} else if newer(v, newestGlibc) {
			newestGlibc = v
		}
		members[f.rel] = f.dest
	}
	for rel, body := range a.extra {
		dst := filepath.Join(tree, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return natives.Native{}, "", err
		}
		if err := os.WriteFile(dst, []byte(body), 0o644); err != nil {
			return natives.Native{}, "", err
		}
	}
	sum, err := writeArchive(ctx, tree, o.Dir, o.Epoch)
	if err != nil {
		return natives.Native{}, "", fmt.Errorf("stand-in natives: archive %s: %w", a.name, err)
	}
	src := a.source
	if strings.HasPrefix(src, "oci://") {
		src += "@sha256:" + sum
	}
	return natives.Native{Name: a.name, Version: a.version, Source: src, SHA256: sum, Members: members}, newestGlibc, nil
}

// writeLock validates lock and writes it and the mirror's index.
func writeLock(res *Result, o Options, lock *natives.Lock) error {
	if err := lock.Validate(); err != nil {
		return fmt.Errorf("stand-in natives: the synthesized lock is invalid: %w", err)
	}
	b, err := lock.Marshal()
	if err != nil {
		return err
	}
	res.LockPath = filepath.Join(res.LocksDir, o.Platform.ID, natives.LockFileName)
	if err := os.MkdirAll(filepath.Dir(res.LockPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(res.LockPath, b, 0o644); err != nil {
		return err
	}
	res.Lock = lock
	return writeIndex(o.Dir, lock)
}

func originOr(origin, path string) string {
	if origin != "" {
		return origin
	}
	return path
}

// versionOf runs bin --version and takes the first submatch of pattern.
func versionOf(ctx context.Context, bin, pattern string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("stand-in natives: %s --version: %v\n%s", bin, err, out)
	}
	m := regexp.MustCompile(pattern).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("stand-in natives: %s --version printed no version matching %s:\n%s", bin, pattern, out)
	}
	return string(m[1]), nil
}

func findOpenSSL(dir, goarch string) (string, error) {
	dirs := libDirs[goarch]
	if dir != "" {
		dirs = []string{dir}
	}
	for _, d := range dirs {
		if isFile(filepath.Join(d, "libssl.so.3")) && isFile(filepath.Join(d, "libcrypto.so.3")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("stand-in natives: no libssl.so.3 and libcrypto.so.3 in %s (install libssl3)", strings.Join(dirs, ", "))
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// newestGLIBC is the newest GLIBC_x.y symbol version file needs ("" for none).
func newestGLIBC(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	needs, err := f.DynamicVersionNeeds()
	if err != nil {
		return "", nil // static or no version needs
	}
	var newest string
	for _, n := range needs {
		for _, d := range n.Needs {
			if v, ok := strings.CutPrefix(d.Dep, "GLIBC_"); ok && newer(v, newest) {
				newest = v
			}
		}
	}
	return newest, nil
}

// newer reports whether version a is newer than b ("" is oldest).
func newer(a, b string) bool {
	va, err := semver.NewVersion(a)
	if err != nil {
		return false
	}
	vb, err := semver.NewVersion(b)
	if err != nil {
		return true
	}
	return va.GreaterThan(vb)
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeArchive packs tree as a reproducible tar.gz into mirror/sha256/<hex>.
func writeArchive(ctx context.Context, tree, mirror string, epoch time.Time) (string, error) {
	entries, err := pack.Entries(tree)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := pack.WriteUnder(ctx, &buf, entries, "", epoch); err != nil {
		return "", err
	}
	h := sha256.Sum256(buf.Bytes())
	sum := hex.EncodeToString(h[:])
	dst := natives.CachePath(mirror, sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	tmp := dst + ".partial"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return sum, os.Rename(tmp, dst)
}

// writeIndex records what each digest is, as `release natives fetch --to` does.
func writeIndex(dir string, lock *natives.Lock) error {
	var entries []natives.MirrorEntry
	for _, n := range lock.Natives {
		entries = append(entries, natives.MirrorEntry{SHA256: n.SHA256, Name: n.Name, Version: n.Version,
			Platform: lock.Platform, Source: n.Source, Path: "sha256/" + n.SHA256})
	}
	b, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), append(b, '\n'), 0o644)
}
