// Package rehearse runs a whole release as a trial: Rehearse builds a
// snapshot, publishes it with restricted access to a private Verdaccio it
// starts, and checks the result the way a new user
// would meet it: anonymous reads refused, `npx --yes @scope/cli@V version`
// installing the host's payload through the launcher, a second publish
// skipping everything.
package rehearse

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/release/verdaccio"
)

// Options configure Rehearse.
type Options struct {
	// Build produces the release to rehearse (a snapshot or --version) and
	// returns its artifact list; Dist is where it wrote it.
	Build func(ctx context.Context) (*artifact.Release, error)
	Dist  string
	// Scope is the npm scope the registry restricts, e.g. "@second-inc".
	Scope string
	// Keep leaves the registry running and its files in place.
	Keep bool
	// WorkDir holds the registry, the .npmrc files and the new user's HOME;
	// "" makes a temporary one.
	WorkDir string
	// VerdaccioBin, NPMBin, NPXBin: "" finds them (verdaccio.FindBin, $PATH).
	VerdaccioBin, NPMBin, NPXBin string
	// Images, when set, pushes, signs and verifies the images against a
	// local registry (ImagesCheck in the CLI), reported as one more check.
	// workDir is the rehearsal's, for the registry's storage and keys.
	Images func(ctx context.Context, workDir string) (string, error)
	// NPXTimeout bounds the install-and-run check, default 10 minutes.
	NPXTimeout time.Duration
	Log        *slog.Logger
}

// Check is one verified property of the rehearsal.
type Check struct {
	Name   string        `json:"name"`
	OK     bool          `json:"ok"`
	Detail string        `json:"detail,omitempty"`
	Took   time.Duration `json:"tookNs"`
}

// Report is what Rehearse found.
type Report struct {
	Version  string `json:"version"`
	Launcher string `json:"launcher,omitempty"`
	Registry string `json:"registry,omitempty"`
	// Npmrc is the new user's .npmrc (registry + token) for trying it by hand.
	Npmrc   string          `json:"npmrc,omitempty"`
	WorkDir string          `json:"workDir,omitempty"`
	Kept    bool            `json:"kept"`
	Pid     int             `json:"registryPid,omitempty"`
	Checks  []Check         `json:"checks"`
	Publish *publish.Ledger `json:"publish,omitempty"`
}

// OK is true when every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// Rehearse runs the rehearsal. The report is returned even on failure; the
// error names the first failed check.
func Rehearse(ctx context.Context, o Options) (rep *Report, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Scope == "" {
		o.Scope = "@second-inc"
	}
	if o.NPXTimeout == 0 {
		o.NPXTimeout = 10 * time.Minute
	}
	rep = &Report{}
	check := func(name string, f func() (string, error)) error {
		start := time.Now()
		log.Info("rehearsal check", "check", name)
		detail, err := f()
		c := Check{Name: name, OK: err == nil, Detail: detail, Took: time.Since(start).Round(time.Millisecond)}
		if err != nil {
			c.Detail = err.Error()
		}
		rep.Checks = append(rep.Checks, c)
		if err != nil {
			return fmt.Errorf("rehearsal: %s: %w", name, err)
		}
		return nil
	}

	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "second-rehearsal-"); err != nil {
			return rep, err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return rep, err
	}
	rep.WorkDir = work
	var srv *verdaccio.Server
	defer func() {
		if o.Keep && srv != nil {
			rep.Kept = true
			return
		}
		if srv != nil {
			srv.Stop()
		}
		if o.WorkDir == "" {
			os.RemoveAll(work)
		}
		rep.WorkDir, rep.Npmrc = "", ""
	}()

	var rel *artifact.Release
	if err := check("build", func() (string, error) {
		var err error
		if rel, err = o.Build(ctx); err != nil {
			return "", err
		}
		rep.Version = rel.Version
		return fmt.Sprintf("%s: %d payloads + launcher", rel.Version, len(rel.Filter(artifact.KindPayload))), nil
	}); err != nil {
		return rep, err
	}

	var pubToken string
	if err := check("private registry", func() (string, error) {
		var err error
		srv, err = verdaccio.Start(ctx, verdaccio.Options{Dir: filepath.Join(work, "registry"), Bin: o.VerdaccioBin, Scope: o.Scope, Log: log})
		if err != nil {
			return "", err
		}
		rep.Registry, rep.Pid = srv.URL, srv.Pid()
		if pubToken, err = srv.AddUser(ctx, "rehearsal-publisher", secret()); err != nil {
			return "", err
		}
		return fmt.Sprintf("Verdaccio at %s, %s/* readable and publishable only when authenticated", srv.URL, o.Scope), nil
	}); err != nil {
		return rep, err
	}

	pubDir := filepath.Join(work, "publisher")
	pubRC := filepath.Join(pubDir, ".npmrc")
	if err := srv.WriteNpmrc(pubRC, pubToken); err != nil {
		return rep, err
	}
	pubEnv := append(cleanEnv(os.Environ()), "npm_config_userconfig="+pubRC,
		"npm_config_cache="+filepath.Join(work, "npm-cache"), "npm_config_update_notifier=false",
		"npm_config_fund=false", "npm_config_audit=false")
	pubOpts := publish.Options{
		Dist: o.Dist, Release: rel, Registry: srv.URL, Access: "restricted",
		Env: pubEnv, ProjectDir: pubDir, NPMBin: o.NPMBin, Log: log,
	}
	if err := check("publish --access restricted", func() (string, error) {
		l, err := publish.Run(ctx, pubOpts)
		rep.Publish = l
		if err != nil {
			return "", err
		}
		if n := l.Counts()[publish.StatePublished]; n != len(l.Packages) {
			return "", fmt.Errorf("%d of %d packages published on a fresh registry", n, len(l.Packages))
		}
		return fmt.Sprintf("%d packages, payloads before the launcher, tag %q", len(l.Packages), l.Tag), nil
	}); err != nil {
		return rep, err
	}

	if err := check("anonymous reads refused", func() (string, error) {
		anon := &npmregistry.Client{Registry: srv.URL, Anonymous: true}
		for _, e := range rep.Publish.Packages {
			_, err := anon.Packument(ctx, e.Name)
			switch npmregistry.CodeOf(err) {
			case npmregistry.CodeAuthRequired, npmregistry.CodeForbidden:
			case "":
				return "", fmt.Errorf("%s is readable without credentials", e.Name)
			default:
				return "", fmt.Errorf("anonymous read of %s: %v", e.Name, err)
			}
		}
		return fmt.Sprintf("%d packages answer 401/403 without a token", len(rep.Publish.Packages)), nil
	}); err != nil {
		return rep, err
	}

	launcher := rel.Filter(artifact.KindLauncher)
	if len(launcher) != 1 {
		return rep, errors.New("rehearsal: the release has no launcher")
	}
	userHome := filepath.Join(work, "new-user-home")
	rep.Npmrc = filepath.Join(userHome, ".npmrc")
	if err := check("npx as a new user", func() (string, error) {
		token, err := srv.AddUser(ctx, "rehearsal-user", secret())
		if err != nil {
			return "", err
		}
		if err := srv.WriteNpmrc(rep.Npmrc, token); err != nil {
			return "", err
		}
		host, err := platform.Host()
		if err != nil {
			return "", err
		}
		var payload *artifact.Artifact
		for _, a := range rel.Filter(artifact.KindPayload) {
			if a.Platform == host.ID {
				payload = &a
			}
		}
		if payload == nil {
			return "", fmt.Errorf("the build has no payload for this host (%s): rehearse builds every platform of release.yaml, include %s", host.ID, host.ID)
		}
		rep.Launcher = launcher[0].Name
		spec := launcher[0].Name + "@" + rel.Version
		out, err := o.npx(ctx, userHome, spec, "version")
		if err != nil {
			return "", err
		}
		if !containsLine(out, rel.Version) {
			return "", fmt.Errorf("`npx --yes %s version` printed %q, want %s", spec, lastLines(out, 10), rel.Version)
		}
		installed := filepath.Join(userHome, ".second", "cli-payloads", payload.Name+"@"+rel.Version, "node_modules", filepath.FromSlash(payload.Name), "manifest.json")
		if _, err := os.Stat(installed); err != nil {
			return "", fmt.Errorf("the launcher ran but %s is not installed: %w", payload.Name, err)
		}
		return fmt.Sprintf("npx --yes %s version installed %s and printed %s", spec, payload.Name, rel.Version), nil
	}); err != nil {
		return rep, err
	}

	if err := check("publish again skips everything", func() (string, error) {
		l, err := publish.Run(ctx, pubOpts)
		if err != nil {
			return "", err
		}
		if n := l.Counts()[publish.StateSkipped]; n != len(l.Packages) {
			return "", fmt.Errorf("second publish: %d of %d skipped", n, len(l.Packages))
		}
		return fmt.Sprintf("%d of %d skipped as already published", len(l.Packages), len(l.Packages)), nil
	}); err != nil {
		return rep, err
	}

	if o.Images != nil {
		if err := check("images pushed, signed, verified", func() (string, error) { return o.Images(ctx, work) }); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// npx runs `npx --yes spec args...` as a new user: only HOME, PATH and the
// locale from this environment, so nothing of the caller's npm setup leaks in.
func (o Options) npx(ctx context.Context, home, spec string, args ...string) (string, error) {
	bin := o.NPXBin
	if bin == "" {
		bin = "npx"
	}
	ctx, cancel := context.WithTimeout(ctx, o.NPXTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--yes", spec}, args...)...)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "npm_config_update_notifier=false",
		"npm_config_fund=false", "npm_config_audit=false", "TMPDIR=" + filepath.Join(home, "tmp")}
	for _, k := range []string{"LANG", "LC_ALL", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if err := os.MkdirAll(filepath.Join(home, "tmp"), 0o700); err != nil {
		return "", err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("npx --yes %s %s: %w\n%s", spec, strings.Join(args, " "), err, lastLines(stderr.String()+stdout.String(), 20))
	}
	return stdout.String(), nil
}

// cleanEnv drops the caller's npm settings and Second overrides, so the
// rehearsal talks only to its own registry.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k := strings.ToLower(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(k, "npm_config_") || strings.HasPrefix(k, "second_cli_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func secret() string {
	b := make([]byte, 18)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteTable prints the rehearsal summary.
func (r *Report) WriteTable(w io.Writer) {
	if r.Version != "" {
		fmt.Fprintf(w, "rehearsal of %s\n", r.Version)
	} else {
		fmt.Fprintln(w, "rehearsal")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tTIME\tDETAIL")
	for _, c := range r.Checks {
		res := "ok"
		if !c.OK {
			res = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, res, c.Took, firstLine(c.Detail))
	}
	tw.Flush()
	for _, c := range r.Checks {
		if !c.OK && strings.Contains(c.Detail, "\n") {
			fmt.Fprintf(w, "\n%s:\n%s\n", c.Name, c.Detail)
		}
	}
	if r.Kept {
		fmt.Fprintf(w, "\nregistry kept running: %s (pid %d; stop it with: kill -- -%d)\n", r.Registry, r.Pid, r.Pid)
		fmt.Fprintf(w, "new user's .npmrc: %s\n", r.Npmrc)
		fmt.Fprintf(w, "try it: HOME=%s npx --yes %s@%s version\n", filepath.Dir(r.Npmrc), r.Launcher, r.Version)
		fmt.Fprintf(w, "files: %s\n", r.WorkDir)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
