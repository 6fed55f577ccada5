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
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/pipeline"
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
	// RunImages, when set, runs the host-platform images the images check
	// pushed and signed, pulled with podman, until their health routes
	// answer: one more check, after the images check.
	RunImages func(ctx context.Context) (string, error)
	// NPXTimeout bounds the install-and-run check, default 10 minutes.
	NPXTimeout time.Duration
	Log        *slog.Logger
}

// Result is one check's outcome in the report.
type Result struct {
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
	// Npmrc is the new user's .npmrc for trying it by hand: the scope's
	// registry and its token only, public packages from npm's default.
	Npmrc   string   `json:"npmrc,omitempty"`
	WorkDir string   `json:"workDir,omitempty"`
	Kept    bool     `json:"kept"`
	Pid     int      `json:"registryPid,omitempty"`
	Checks  []Result `json:"checks"`
	// Stack times the new user's `npx … start` (first run with the
	// install, then the second), when the stack check ran.
	Stack   []StackRun      `json:"stack,omitempty"`
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

// checks are the rehearsal, in this order; each finds what the earlier ones
// left in the rehearsal. A new check is one line here and one function; it
// returns a pipeline.Skip when it does not apply (it is then not reported).
var checks = []pipeline.StepOf[*rehearsal]{
	check{"build", buildCheck},
	check{"private registry", registryCheck},
	check{"publish --access restricted", publishCheck},
	check{"anonymous reads refused", anonymousCheck},
	check{"npx as a new user", npxCheck},
	check{"stack starts and stops through npx", stackCheck},
	check{"publish again skips everything", republishCheck},
	check{"images pushed, signed, verified", imagesCheck},
	check{"host images run under podman", runImagesCheck},
}

// check is a named check: run returns a one-line detail for the report.
type check struct {
	name string
	run  func(ctx context.Context, r *rehearsal) (detail string, err error)
}

func (c check) String() string { return c.name }

func (c check) Run(ctx context.Context, r *rehearsal) error {
	var err error
	r.detail, err = c.run(ctx, r)
	return err
}

// rehearsal is what the checks share.
type rehearsal struct {
	Options
	rep    *Report
	work   string
	log    *slog.Logger
	srv    *verdaccio.Server
	rel    *artifact.Release
	pub    publish.Options // the publisher's npm setup, for both publishes
	detail string          // the running check's
}

// Rehearse runs the rehearsal. The report is returned even on failure; the
// error names the first failed check.
func Rehearse(ctx context.Context, o Options) (rep *Report, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Scope == "" {
		o.Scope = "@second-inc"
	}
	if o.NPXTimeout == 0 {
		o.NPXTimeout = 10 * time.Minute
	}
	rep = &Report{}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "second-rehearsal-"); err != nil {
			return rep, err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return rep, err
	}
	rep.WorkDir = work
	r := &rehearsal{Options: o, rep: rep, work: work, log: o.Log}
	defer func() {
		if o.Keep && r.srv != nil {
			rep.Kept = true
			return
		}
		if r.srv != nil {
			r.srv.Stop()
		}
		if o.WorkDir == "" {
			os.RemoveAll(work)
		}
		rep.WorkDir, rep.Npmrc = "", ""
	}()
	err = pipeline.RunSteps(ctx, o.Log, r, checks, func(c pipeline.StepOf[*rehearsal], took time.Duration, err error) {
		if errors.As(err, new(pipeline.Skip)) {
			return
		}
		res := Result{Name: c.String(), OK: err == nil, Detail: r.detail, Took: took.Round(time.Millisecond)}
		if err != nil {
			res.Detail = err.Error()
		}
		rep.Checks = append(rep.Checks, res)
	})
	if err != nil {
		return rep, fmt.Errorf("rehearsal: %w", err)
	}
	return rep, nil
}

func buildCheck(ctx context.Context, r *rehearsal) (string, error) {
	rel, err := r.Build(ctx)
	if err != nil {
		return "", err
	}
	r.rel, r.rep.Version = rel, rel.Version
	if n := len(rel.Filter(artifact.KindLauncher)); n != 1 {
		return "", fmt.Errorf("the release has %d launchers, want 1", n)
	}
	return fmt.Sprintf("%s: %d payloads + launcher", rel.Version, len(rel.Filter(artifact.KindPayload))), nil
}

func registryCheck(ctx context.Context, r *rehearsal) (string, error) {
	srv, err := verdaccio.Start(ctx, verdaccio.Options{Dir: filepath.Join(r.work, "registry"), Bin: r.VerdaccioBin, Scope: r.Scope, Log: r.log})
	if err != nil {
		return "", err
	}
	r.srv = srv
	r.rep.Registry, r.rep.Pid = srv.URL, srv.Pid()
	token, err := srv.AddUser(ctx, "rehearsal-publisher", secret())
	if err != nil {
		return "", err
	}
	pubDir := filepath.Join(r.work, "publisher")
	pubRC := filepath.Join(pubDir, ".npmrc")
	if err := srv.WriteNpmrc(pubRC, token); err != nil {
		return "", err
	}
	env := npmconf.Quiet(append(cleanEnv(os.Environ()), "npm_config_userconfig="+pubRC,
		"npm_config_cache="+filepath.Join(r.work, "npm-cache")))
	r.pub = publish.Options{
		Dist: r.Dist, Release: r.rel, Registry: srv.URL, Access: "restricted",
		Env: env, ProjectDir: pubDir, NPMBin: r.NPMBin, Log: r.log,
	}
	return fmt.Sprintf("Verdaccio at %s, %s/* readable and publishable only when authenticated", srv.URL, r.Scope), nil
}

func publishCheck(ctx context.Context, r *rehearsal) (string, error) {
	l, err := publish.Run(ctx, r.pub)
	r.rep.Publish = l
	if err != nil {
		return "", err
	}
	if n := l.Counts()[publish.StatePublished]; n != len(l.Packages) {
		return "", fmt.Errorf("%d of %d packages published on a fresh registry", n, len(l.Packages))
	}
	return fmt.Sprintf("%d packages, payloads before the launcher, tag %q", len(l.Packages), l.Tag), nil
}

func anonymousCheck(ctx context.Context, r *rehearsal) (string, error) {
	anon := &npmregistry.Client{Registry: r.srv.URL, Anonymous: true}
	for _, e := range r.rep.Publish.Packages {
		_, err := anon.Packument(ctx, e.Name)
		switch npmregistry.CodeOf(err) {
		case npmregistry.CodeAuthRequired, npmregistry.CodeForbidden:
		case "":
			return "", fmt.Errorf("%s is readable without credentials", e.Name)
		default:
			return "", fmt.Errorf("anonymous read of %s: %v", e.Name, err)
		}
	}
	return fmt.Sprintf("%d packages answer 401/403 without a token", len(r.rep.Publish.Packages)), nil
}

func npxCheck(ctx context.Context, r *rehearsal) (string, error) {
	rel := r.rel
	launcher := rel.Filter(artifact.KindLauncher)[0]
	userHome := filepath.Join(r.work, "new-user-home")
	r.rep.Npmrc = filepath.Join(userHome, ".npmrc")
	token, err := r.srv.AddUser(ctx, "rehearsal-user", secret())
	if err != nil {
		return "", err
	}
	// Scoped: the user's other packages keep coming from their registry, so
	// the file also serves a build that needs public packages.
	if err := r.srv.WriteScopedNpmrc(r.rep.Npmrc, token); err != nil {
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
	r.rep.Launcher = launcher.Name
	spec := launcher.Name + "@" + rel.Version
	out, err := r.npx(ctx, userHome, spec, "version")
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
}

func republishCheck(ctx context.Context, r *rehearsal) (string, error) {
	l, err := publish.Run(ctx, r.pub)
	if err != nil {
		return "", err
	}
	if n := l.Counts()[publish.StateSkipped]; n != len(l.Packages) {
		return "", fmt.Errorf("second publish: %d of %d skipped", n, len(l.Packages))
	}
	return fmt.Sprintf("%d of %d skipped as already published", len(l.Packages), len(l.Packages)), nil
}

func imagesCheck(ctx context.Context, r *rehearsal) (string, error) {
	if r.Images == nil {
		return "", pipeline.Skip{Reason: "images not asked for"}
	}
	return r.Images(ctx, r.work)
}

func runImagesCheck(ctx context.Context, r *rehearsal) (string, error) {
	if r.RunImages == nil {
		return "", pipeline.Skip{Reason: "running the images not asked for"}
	}
	return r.RunImages(ctx)
}

// npx runs `npx --yes spec args...` as a new user: only HOME, PATH and the
// locale from this environment, so nothing of the caller's npm setup leaks in.
func (o Options) npx(ctx context.Context, home, spec string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, o.NPXTimeout)
	defer cancel()
	cmd, err := o.npxCmd(ctx, home, spec, args...)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("npx --yes %s %s: %w\n%s", spec, strings.Join(args, " "), err, lastLines(stderr.String()+stdout.String(), 20))
	}
	return stdout.String(), nil
}

// newUserEnv is a new user's environment: only HOME, PATH and the locale
// from this one, so nothing of the caller's npm or Second setup leaks in.
func newUserEnv(home string) []string {
	env := npmconf.Quiet([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + filepath.Join(home, "tmp")})
	for _, k := range []string{"LANG", "LC_ALL", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
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
		fmt.Fprintf(w, "new user's .npmrc: %s (scoped: only the rehearsed packages come from this registry, the rest from npm's default)\n", r.Npmrc)
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
