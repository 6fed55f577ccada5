package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// NativesOptions says where FindNatives looks. Zero fields take the
// process's own values.
type NativesOptions struct {
	Executable string // default os.Executable, symlinks resolved
	// PayloadsDir holds the payloads the launcher installed
	// (<home>/cli-payloads/<name>@<version>/node_modules/<name>).
	PayloadsDir string
	Cwd         string
	Getenv      func(string) string
	LookPath    func(string) (string, error)
}

// FindNatives finds mongod and redis-server for a development stack, each
// in this order: an installed payload's dist/runtime/bin (the one around
// the executable, then those under PayloadsDir, newest first), the
// SECOND_MONGOD / SECOND_REDIS_SERVER override, then PATH. The returned
// Payload has only Mongod, RedisServer and LibDir set; LibDir is the
// payload's runtime/lib when mongod came from a payload.
func FindNatives(o NativesOptions) (*Payload, error) {
	getenv, lookPath := o.Getenv, o.LookPath
	if getenv == nil {
		getenv = os.Getenv
	}
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	exe := o.Executable
	if exe == "" {
		if e, err := os.Executable(); err == nil {
			exe = e
		}
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	var roots []string
	if exe != "" {
		roots = append(roots, PayloadRoot(exe))
	}
	roots = append(roots, installedPayloads(o.PayloadsDir)...)

	p := &Payload{}
	var errs []error
	for _, n := range []struct {
		piece, env string
		dst        *string
	}{
		{PieceMongod, "SECOND_MONGOD", &p.Mongod},
		{PieceRedis, "SECOND_REDIS_SERVER", &p.RedisServer},
	} {
		path, root, err := findNative(n.piece, n.env, roots, o.Cwd, getenv, lookPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*n.dst = path
		if lib := filepath.Join(root, "dist", "runtime", "lib"); root != "" && p.LibDir == "" && isDir(lib) {
			p.LibDir = lib
		}
	}
	return p, errors.Join(errs...)
}

// findNative returns the binary's path and the payload root it came from
// ("" when it did not come from a payload).
func findNative(piece, env string, roots []string, cwd string, getenv func(string) string, lookPath func(string) (string, error)) (string, string, error) {
	for _, r := range roots {
		if c := filepath.Join(r, "dist", "runtime", "bin", piece); isExecutable(c) {
			return c, r, nil
		}
	}
	if v := getenv(env); v != "" {
		if c := absFrom(cwd, v); isExecutable(c) {
			return c, "", nil
		}
		if !strings.ContainsRune(v, filepath.Separator) {
			if lp, err := lookPath(v); err == nil {
				return lp, "", nil
			}
		}
		return "", "", fmt.Errorf("%s: %s=%s is not an executable; point it at one, or unset it to use %s from PATH", piece, env, v, piece)
	}
	if lp, err := lookPath(piece); err == nil {
		return lp, "", nil
	}
	where := "no installed payload"
	if len(roots) > 0 {
		where = "not in " + strings.Join(roots, ", ")
	}
	return "", "", fmt.Errorf("%s not found: looked in an installed payload's dist/runtime/bin (%s), %s (unset) and PATH; install the payload with `npx --yes @second-inc/cli`, set %s, or put %s on PATH",
		piece, where, env, env, piece)
}

// installedPayloads lists the payload package dirs under dir, newest first.
func installedPayloads(dir string) []string {
	if dir == "" {
		return nil
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "node_modules", "@second-inc", "cli-local-*"))
	type found struct {
		path string
		mod  int64
	}
	var fs []found
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			fs = append(fs, found{m, st.ModTime().UnixNano()})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod > fs[j].mod })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.path
	}
	return out
}
