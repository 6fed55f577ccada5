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

// Discover locates the payload. Env overrides win over the layout next to
// the executable: SECOND_NODE, SECOND_WEB_DIR, SECOND_WORKER_SCRIPT,
// SECOND_MONGOD, SECOND_REDIS_SERVER.
func Discover(o DiscoverOptions) (*Payload, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	lookPath := o.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	exe := o.Executable
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the second executable: %w", err)
		}
		exe = e
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	need := func(p string) bool { return o.Need == nil || o.Need[p] }

	p := &Payload{Root: filepath.Dir(filepath.Dir(exe))}
	dist := filepath.Join(p.Root, "dist")
	if isFile(filepath.Join(p.Root, "manifest.json")) {
		p.Manifest = filepath.Join(p.Root, "manifest.json")
	}
	if isDir(filepath.Join(dist, "runtime", "lib")) {
		p.LibDir = filepath.Join(dist, "runtime", "lib")
	}
	const reinstall = "it ships in the payload package @second-inc/cli-local-" + runtime.GOOS + "-*; run `npx --yes @second-inc/cli` again to reinstall it"

	var errs []error
	// node
	if v := getenv("SECOND_NODE"); v != "" {
		p.Node = v
		if !isExecutable(v) {
			if lp, err := lookPath(v); err == nil {
				p.Node = lp
			} else if need(PieceNode) {
				errs = append(errs, &MissingError{PieceNode, v + " (SECOND_NODE)", "point SECOND_NODE at a Node.js ≥ 20 executable"})
			}
		}
	} else if lp, err := lookPath("node"); err == nil {
		p.Node = lp
	} else if need(PieceNode) {
		errs = append(errs, &MissingError{PieceNode, "node on PATH", "install Node.js ≥ 20 (the npx launcher passes its own node as SECOND_NODE), or set SECOND_NODE"})
	}

	// web
	p.WebDir = filepath.Join(dist, "web")
	webHow := reinstall + ", or set SECOND_WEB_DIR to a Next.js standalone output dir"
	webWhere := p.WebDir + "/server.js"
	if v := getenv("SECOND_WEB_DIR"); v != "" {
		p.WebDir, webWhere = absFrom(cwd, v), absFrom(cwd, v)+"/server.js (SECOND_WEB_DIR)"
		webHow = "SECOND_WEB_DIR must be a Next.js standalone output dir containing server.js"
	}
	p.WebServer = filepath.Join(p.WebDir, "server.js")
	if !isFile(p.WebServer) && need(PieceWeb) {
		errs = append(errs, &MissingError{"web server", webWhere, webHow})
	}

	// worker
	switch repo := findMonorepo(cwd, filepath.Dir(exe)); {
	case getenv("SECOND_WORKER_SCRIPT") != "":
		script := absFrom(cwd, getenv("SECOND_WORKER_SCRIPT"))
		p.WorkerArgs, p.WorkerDir = []string{script}, filepath.Dir(script)
		if strings.HasSuffix(script, ".ts") {
			p.WorkerArgs, p.WorkerFromSource = []string{"--import", "tsx", script}, true
		}
		if !isFile(script) && need(PieceWorker) {
			errs = append(errs, &MissingError{PieceWorker, script + " (SECOND_WORKER_SCRIPT)", "SECOND_WORKER_SCRIPT must name the bundled worker (worker.mjs)"})
		}
	case repo != "":
		// A product checkout: run the worker from source so edits apply
		// without a bundle step; tsx resolves from the worker's package.
		p.WorkerDir = filepath.Join(repo, "apps", "worker")
		p.WorkerArgs = []string{"--import", "tsx", filepath.Join(repo, filepath.FromSlash(monorepoWorker))}
		p.WorkerFromSource = true
	default:
		script := filepath.Join(dist, "worker", "worker.mjs")
		p.WorkerArgs, p.WorkerDir = []string{script}, filepath.Dir(script)
		if !isFile(script) && need(PieceWorker) {
			errs = append(errs, &MissingError{PieceWorker, script, reinstall + ", or set SECOND_WORKER_SCRIPT"})
		}
	}

	// natives
	for _, n := range []struct {
		piece, env string
		dst        *string
	}{
		{PieceMongod, "SECOND_MONGOD", &p.Mongod},
		{PieceRedis, "SECOND_REDIS_SERVER", &p.RedisServer},
	} {
		def := filepath.Join(dist, "runtime", "bin", n.piece)
		if v := getenv(n.env); v != "" {
			*n.dst = absFrom(cwd, v)
			if !isExecutable(*n.dst) {
				if lp, err := lookPath(v); err == nil && !strings.ContainsRune(v, filepath.Separator) {
					*n.dst = lp
				} else if need(n.piece) {
					errs = append(errs, &MissingError{n.piece, *n.dst + " (" + n.env + ")", n.env + " must name an executable " + n.piece})
				}
			}
			continue
		}
		*n.dst = def
		if !isExecutable(def) && need(n.piece) {
			errs = append(errs, &MissingError{n.piece, def, reinstall + ", or set " + n.env})
		}
	}
	if len(errs) > 0 {
		return p, errors.Join(errs...)
	}
	return p, nil
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
