// Package stack is the `second` runtime: it finds the payload, prepares
// the home (secrets, ports, redis config), describes mongod, redis-server,
// the web server and the worker as supervise.Processes, runs them, keeps
// runtime.json current, and implements stop, status, logs and reset.
package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Payload is where every piece the runtime runs lives.
type Payload struct {
	// Root is the payload package dir (the parent of bin/), derived from
	// the executable; pieces may come from elsewhere through env overrides.
	Root string
	// Manifest is Root/manifest.json when it exists, else "".
	Manifest string

	Node      string // node executable
	WebDir    string // dir holding server.js; the web server's cwd
	WebServer string // WebDir/server.js

	// WorkerArgs are node's arguments (flags then script) and WorkerDir the
	// worker's cwd. From a monorepo checkout they are
	// `--import tsx <repo>/apps/worker/src/index.ts`.
	WorkerArgs       []string
	WorkerDir        string
	WorkerFromSource bool

	Mongod      string
	RedisServer string
	// LibDir is dist/runtime/lib when present: the libraries mongod and
	// redis-server need that the OS lacks. Given to those two only.
	LibDir string
}

// DiscoverOptions says where to look. Zero fields take the process's own values.
type DiscoverOptions struct {
	Executable string // default os.Executable, symlinks resolved
	Cwd        string // default os.Getwd
	Getenv     func(string) string
	LookPath   func(string) (string, error)
	// Need selects which pieces must exist; nil means all (start). doctor
	// and status pass a subset so a partly broken payload can be examined.
	Need map[string]bool
}

// Piece names used in errors and DiscoverOptions.Need.
const (
	PieceNode   = "node"
	PieceWeb    = "web"
	PieceWorker = "worker"
	PieceMongod = "mongod"
	PieceRedis  = "redis-server"
)

// MissingError names a piece that could not be found and how it is provided.
type MissingError struct {
	Piece string
	Path  string // where it was looked for
	How   string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s not found (looked for %s): %s", e.Piece, e.Path, e.How)
}

// monorepoWorker is the worker's entry point in a product checkout.
const monorepoWorker = "apps/worker/src/index.ts"

// discovery is one Discover call's inputs with defaults applied.
type discovery struct {
	getenv   func(string) string
	lookPath func(string) (string, error)
	exe, cwd string
	need     func(piece string) bool
	dist     string
}

func newDiscovery(o DiscoverOptions) (*discovery, error) {
	d := &discovery{getenv: o.Getenv, lookPath: o.LookPath, exe: o.Executable, cwd: o.Cwd}
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	if d.lookPath == nil {
		d.lookPath = exec.LookPath
	}
	if d.exe == "" {
		e, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the second executable: %w", err)
		}
		d.exe = e
	}
	if r, err := filepath.EvalSymlinks(d.exe); err == nil {
		d.exe = r
	}
	if d.cwd == "" {
		d.cwd, _ = os.Getwd()
	}
	d.need = func(p string) bool { return o.Need == nil || o.Need[p] }
	d.dist = filepath.Join(PayloadRoot(d.exe), "dist")
	return d, nil
}

// PayloadRoot is the payload package dir of the second executable at exe
// (the parent of its bin/).
func PayloadRoot(exe string) string { return filepath.Dir(filepath.Dir(exe)) }

// reinstall is how a missing payload piece comes back.
const reinstall = "it ships in the payload package @second-inc/cli-local-" + runtime.GOOS + "-*; run `npx --yes @second-inc/cli` again to reinstall it"

// Discover locates the payload. Env overrides win over the layout next to
// the executable: SECOND_NODE, SECOND_WEB_DIR, SECOND_WORKER_SCRIPT,
// SECOND_MONGOD, SECOND_REDIS_SERVER.
func Discover(o DiscoverOptions) (*Payload, error) {
	d, err := newDiscovery(o)
	if err != nil {
		return nil, err
	}
	p := &Payload{Root: PayloadRoot(d.exe)}
	if isFile(filepath.Join(p.Root, "manifest.json")) {
		p.Manifest = filepath.Join(p.Root, "manifest.json")
	}
	if isDir(filepath.Join(d.dist, "runtime", "lib")) {
		p.LibDir = filepath.Join(d.dist, "runtime", "lib")
	}
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	collect(d.node(p))
	collect(d.web(p))
	collect(d.worker(p))
	collect(d.native(PieceMongod, "SECOND_MONGOD", &p.Mongod))
	collect(d.native(PieceRedis, "SECOND_REDIS_SERVER", &p.RedisServer))
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	return p, nil
}

// node: SECOND_NODE (a path or a name on PATH), else node on PATH.
func (d *discovery) node(p *Payload) error {
	if v := d.getenv("SECOND_NODE"); v != "" {
		p.Node = v
		if isExecutable(v) {
			return nil
		}
		if lp, err := d.lookPath(v); err == nil {
			p.Node = lp
			return nil
		}
		if d.need(PieceNode) {
			return &MissingError{PieceNode, v + " (SECOND_NODE)", "point SECOND_NODE at a Node.js ≥ 20 executable"}
		}
		return nil
	}
	if lp, err := d.lookPath("node"); err == nil {
		p.Node = lp
		return nil
	}
	if d.need(PieceNode) {
		return &MissingError{PieceNode, "node on PATH", "install Node.js ≥ 20 (the npx launcher passes its own node as SECOND_NODE), or set SECOND_NODE"}
	}
	return nil
}

// web: SECOND_WEB_DIR, else dist/web.
func (d *discovery) web(p *Payload) error {
	p.WebDir = filepath.Join(d.dist, "web")
	how := reinstall + ", or set SECOND_WEB_DIR to a Next.js standalone output dir"
	where := p.WebDir + "/server.js"
	if v := d.getenv("SECOND_WEB_DIR"); v != "" {
		p.WebDir, where = absFrom(d.cwd, v), absFrom(d.cwd, v)+"/server.js (SECOND_WEB_DIR)"
		how = "SECOND_WEB_DIR must be a Next.js standalone output dir containing server.js"
	}
	p.WebServer = filepath.Join(p.WebDir, "server.js")
	if !isFile(p.WebServer) && d.need(PieceWeb) {
		return &MissingError{"web server", where, how}
	}
	return nil
}

// worker: SECOND_WORKER_SCRIPT, else the source of a product checkout
// around the cwd or the executable, else the bundle in dist/worker.
func (d *discovery) worker(p *Payload) error {
	if v := d.getenv("SECOND_WORKER_SCRIPT"); v != "" {
		script := absFrom(d.cwd, v)
		p.WorkerArgs, p.WorkerDir = []string{script}, filepath.Dir(script)
		if strings.HasSuffix(script, ".ts") {
			p.WorkerArgs, p.WorkerFromSource = []string{"--import", "tsx", script}, true
		}
		if !isFile(script) && d.need(PieceWorker) {
			return &MissingError{PieceWorker, script + " (SECOND_WORKER_SCRIPT)", "SECOND_WORKER_SCRIPT must name the bundled worker (worker.mjs)"}
		}
		return nil
	}
	if repo := findMonorepo(d.cwd, filepath.Dir(d.exe)); repo != "" {
		// A product checkout: run the worker from source so edits apply
		// without a bundle step; tsx resolves from the worker's package.
		p.WorkerDir = filepath.Join(repo, "apps", "worker")
		p.WorkerArgs = []string{"--import", "tsx", filepath.Join(repo, filepath.FromSlash(monorepoWorker))}
		p.WorkerFromSource = true
		return nil
	}
	script := filepath.Join(d.dist, "worker", "worker.mjs")
	p.WorkerArgs, p.WorkerDir = []string{script}, filepath.Dir(script)
	if !isFile(script) && d.need(PieceWorker) {
		return &MissingError{PieceWorker, script, reinstall + ", or set SECOND_WORKER_SCRIPT"}
	}
	return nil
}

// native: the env override (a path, or a bare name on PATH), else
// dist/runtime/bin/<piece>.
func (d *discovery) native(piece, env string, dst *string) error {
	if v := d.getenv(env); v != "" {
		*dst = absFrom(d.cwd, v)
		if isExecutable(*dst) {
			return nil
		}
		if lp, err := d.lookPath(v); err == nil && !strings.ContainsRune(v, filepath.Separator) {
			*dst = lp
			return nil
		}
		if d.need(piece) {
			return &MissingError{piece, *dst + " (" + env + ")", env + " must name an executable " + piece}
		}
		return nil
	}
	*dst = filepath.Join(d.dist, "runtime", "bin", piece)
	if !isExecutable(*dst) && d.need(piece) {
		return &MissingError{piece, *dst, reinstall + ", or set " + env}
	}
	return nil
}

// findMonorepo returns the checkout root holding apps/worker/src/index.ts,
// searching up from each start dir; "" if none.
func findMonorepo(starts ...string) string {
	for _, s := range starts {
		if s == "" {
			continue
		}
		for dir := s; ; dir = filepath.Dir(dir) {
			if isFile(filepath.Join(dir, filepath.FromSlash(monorepoWorker))) {
				return dir
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return ""
}

func absFrom(cwd, p string) string {
	if filepath.IsAbs(p) || cwd == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
