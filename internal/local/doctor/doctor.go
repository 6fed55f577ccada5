// Package doctor checks a `second` installation: the payload against its
// manifest.json, that mongod, redis-server and node run, free disk space
// and the home's permissions. Each check ends ok or with a problem and a fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/manifest"
)

// Status of one check.
type Status string

const (
	OK      Status = "ok"
	Problem Status = "problem"
	Skipped Status = "skipped"
)

// Result is one check's outcome.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Options says what to check. Empty paths are reported as skipped.
type Options struct {
	PayloadRoot string // dir holding manifest.json; "" when not run from a payload
	Node        string
	Mongod      string
	RedisServer string
	// NativeEnv is the environment mongod and redis-server run with (the
	// payload's library path included), so the check sees what start sees.
	NativeEnv []string
	Home      string
	Secrets   []string // secret file paths expected under Home (checked if present)
	SecretDir string
	// MinFreeBytes is the free space below which disk is a problem (default 1 GiB).
	MinFreeBytes uint64
	// Timeout bounds each `--version` run (default 15 s).
	Timeout time.Duration
}

// Run performs every check.
func Run(ctx context.Context, o Options) []Result {
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 1 << 30
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	return []Result{
		checkPayload(o.PayloadRoot),
		checkVersion(ctx, o, "mongod", o.Mongod, o.NativeEnv, "reinstall the payload (`npx --yes @second-inc/cli`) or set SECOND_MONGOD to a working mongod"),
		checkVersion(ctx, o, "redis-server", o.RedisServer, o.NativeEnv, "reinstall the payload (`npx --yes @second-inc/cli`) or set SECOND_REDIS_SERVER to a working redis-server"),
		checkNode(ctx, o),
		checkDisk(o.Home, o.MinFreeBytes),
		checkHome(o),
	}
}

// Failed reports whether any check found a problem.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Problem {
			return true
		}
	}
	return false
}

// Write renders results for people.
func Write(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%-8s %-14s %s\n", r.Status, r.Name, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(w, "%-8s %-14s fix: %s\n", "", "", r.Fix)
		}
	}
}

func checkPayload(root string) Result {
	r := Result{Name: "payload"}
	if root == "" {
		r.Status, r.Detail = Skipped, "not running from an installed payload"
		return r
	}
	m, _, err := manifest.Read(root)
	if errors.Is(err, fs.ErrNotExist) {
		r.Status, r.Detail = Skipped, "no manifest.json in "+root+" (a development build?)"
		return r
	}
	if err != nil {
		r.Status, r.Detail, r.Fix = Problem, "read manifest: "+err.Error(), "reinstall the payload: `npx --yes @second-inc/cli`"
		return r
	}
	problems, err := manifest.Verify(root, m, nil)
	if err != nil {
		r.Status, r.Detail, r.Fix = Problem, "verify payload: "+err.Error(), "reinstall the payload: `npx --yes @second-inc/cli`"
		return r
	}
	if len(problems) == 0 {
		r.Status, r.Detail = OK, fmt.Sprintf("%s %s: all %d files match manifest.json", m.Name, m.Version, len(m.Files))
		return r
	}
	var parts []string
	for i, p := range problems {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(problems)-5))
			break
		}
		parts = append(parts, p.Path+" "+p.Reason)
	}
	r.Status = Problem
	r.Detail = fmt.Sprintf("%d file(s) differ from manifest.json: %s", len(problems), strings.Join(parts, ", "))
	r.Fix = "delete " + root + " and run `npx --yes @second-inc/cli` to reinstall it"
	return r
}

func checkVersion(ctx context.Context, o Options, name, path string, env []string, fix string) Result {
	r := Result{Name: name}
	if path == "" {
		r.Status, r.Detail, r.Fix = Problem, name+" not found", fix
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	first := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if err != nil {
		r.Status, r.Fix = Problem, fix
		r.Detail = fmt.Sprintf("%s --version failed: %v", path, err)
		if first != "" {
			r.Detail += ": " + first
		}
		return r
	}
	r.Status, r.Detail = OK, first
	return r
}

func checkNode(ctx context.Context, o Options) Result {
	r := checkVersion(ctx, o, "node", o.Node, nil, "install Node.js ≥ 20 or set SECOND_NODE")
	if r.Status != OK {
		return r
	}
	v := strings.TrimPrefix(r.Detail, "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < 20 {
		r.Status, r.Fix = Problem, "install Node.js ≥ 20 or set SECOND_NODE"
		r.Detail = "node " + r.Detail + " is older than 20"
	}
	return r
}

func checkDisk(home string, min uint64) Result {
	r := Result{Name: "disk"}
	dir := existingAncestor(home)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		r.Status, r.Detail = Problem, fmt.Sprintf("statfs %s: %v", dir, err)
		return r
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	r.Detail = fmt.Sprintf("%s free on %s", bytesHuman(free), dir)
	if free < min {
		r.Status, r.Fix = Problem, "free some disk space (MongoDB needs at least "+bytesHuman(min)+") or move the home with --home"
		return r
	}
	r.Status = OK
	return r
}

func checkHome(o Options) Result {
	r := Result{Name: "home"}
	if o.Home == "" {
		r.Status, r.Detail = Skipped, "no home"
		return r
	}
	st, err := os.Stat(o.Home)
	if errors.Is(err, fs.ErrNotExist) {
		parent := existingAncestor(o.Home)
		if err := writable(parent); err != nil {
			r.Status, r.Detail, r.Fix = Problem, fmt.Sprintf("%s does not exist and %s is not writable: %v", o.Home, parent, err), "choose a writable home with --home or $SECOND_HOME"
			return r
		}
		r.Status, r.Detail = OK, o.Home+" will be created on first start"
		return r
	}
	if err != nil {
		r.Status, r.Detail = Problem, err.Error()
		return r
	}
	var issues []string
	if !st.IsDir() {
		issues = append(issues, o.Home+" is not a directory")
	} else if err := writable(o.Home); err != nil {
		issues = append(issues, o.Home+" is not writable")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		issues = append(issues, fmt.Sprintf("%s is owned by uid %d, not you (uid %d)", o.Home, sys.Uid, os.Getuid()))
	}
	if o.SecretDir != "" {
		if sst, err := os.Stat(o.SecretDir); err == nil && sst.Mode().Perm()&0o077 != 0 {
			issues = append(issues, fmt.Sprintf("%s has mode %#o (want 0700)", o.SecretDir, sst.Mode().Perm()))
		}
	}
	for _, s := range o.Secrets {
		if sst, err := os.Stat(s); err == nil && sst.Mode().Perm()&0o077 != 0 {
			issues = append(issues, fmt.Sprintf("%s has mode %#o (want 0600)", s, sst.Mode().Perm()))
		}
	}
	if len(issues) > 0 {
		r.Status, r.Detail = Problem, strings.Join(issues, "; ")
		r.Fix = fmt.Sprintf("chown -R $(id -u) %s && chmod 700 %s && chmod 600 %s/*", o.Home, o.SecretDir, o.SecretDir)
		return r
	}
	r.Status, r.Detail = OK, o.Home+" is yours, writable, secrets private"
	return r
}

func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func existingAncestor(p string) string {
	for p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	return "/"
}

func bytesHuman(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
