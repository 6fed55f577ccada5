package nodemods

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/filetree"
	"github.com/second-inc/second-release/internal/release/platform"
)

// Options says which tree to retarget and for which platform.
type Options struct {
	Dir    string            // the tree (e.g. dist/web of one payload); changed in place
	Target platform.Platform // the payload's platform
	// Libc is the target's C library on Linux: Glibc (default; the payloads)
	// or Musl (an Alpine-based image).
	Libc     string
	CacheDir string // downloads, keyed by name@version@platform; default <release cache>/node-modules
	Log      *slog.Logger
	NPM      string // npm executable; default "npm" from PATH
}

// Report says what Retarget changed.
type Report struct {
	// Replaced has one line per replaced group:
	// "sharp@0.35.5: @img/sharp-linux-x64@0.35.5 (linux-x64) -> @img/sharp-darwin-arm64@0.35.5".
	Replaced []string
	Removed  []string // package ids taken out (host variants)
	Added    []string // package ids put in (target variants)
	Pruned   []string // prebuilds/<platform> directories removed from multi-platform packages
}

// Retarget replaces the platform-specific packages in o.Dir that are not for
// o.Target (and o.Libc) with the target's variants, fetched with npm's
// --os/--cpu/--libc, and prunes other platforms' prebuilds. It fails when a
// native module has no resolvable variant for the target, or when an addon
// compiled for another platform or C library stays; Check is the final guard.
func Retarget(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if err := o.defaults(); err != nil {
		return rep, err
	}
	pkgs, err := Scan(o.Dir)
	if err != nil {
		return rep, err
	}
	for _, g := range o.foreignGroups(pkgs) {
		if err := o.replace(ctx, g, &rep); err != nil {
			return rep, err
		}
	}
	pruned, err := prunePrebuilds(o.Dir, o.Target)
	rep.Pruned = pruned
	if err != nil {
		return rep, err
	}
	return rep, o.checkHostAddons()
}

func (o *Options) defaults() error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NPM == "" {
		o.NPM = "npm"
	}
	if o.Libc == "" {
		o.Libc = Glibc
	}
	if o.Libc != Glibc && o.Libc != Musl {
		return fmt.Errorf("retarget node modules: libc %q: want %s or %s", o.Libc, Glibc, Musl)
	}
	if o.CacheDir == "" {
		c, err := home.ReleaseCacheDir()
		if err != nil {
			return fmt.Errorf("retarget node modules: no cache dir: %w", err)
		}
		o.CacheDir = filepath.Join(c, "node-modules")
	}
	if _, err := platform.Parse(o.Target.ID); err != nil {
		return fmt.Errorf("retarget node modules: %w", err)
	}
	return nil
}

// targetName is the target as messages and cache keys name it: linux-x64,
// or linux-x64-musl for a musl target.
func (o Options) targetName() string {
	if o.Target.NodeOS == "linux" && o.Libc == Musl {
		return o.Target.ID + "-musl"
	}
	return o.Target.ID
}

// foreignGroup is the foreign variants one package depends on: the target's
// variants are what npm picks for that package on the target.
type foreignGroup struct {
	root    *Package // nil: no dependent in the tree
	foreign []Package
}

// foreignGroups groups the packages that are not for the target by their
// root dependent, in a stable order.
func (o Options) foreignGroups(pkgs []Package) []*foreignGroup {
	byName := map[string][]int{}
	for i, p := range pkgs {
		byName[p.Name] = append(byName[p.Name], i)
	}
	groups := map[string]*foreignGroup{}
	var keys []string
	for _, f := range pkgs {
		if !f.PlatformSpecific() || f.SupportsLibc(o.Target, o.Libc) {
			continue
		}
		root := rootDependent(pkgs, byName, f)
		key := "orphan:" + f.Rel
		if root != nil {
			key = root.Rel
		}
		g, ok := groups[key]
		if !ok {
			g = &foreignGroup{root: root}
			groups[key] = g
			keys = append(keys, key)
		}
		g.foreign = append(g.foreign, f)
	}
	sort.Strings(keys)
	out := make([]*foreignGroup, len(keys))
	for i, k := range keys {
		out[i] = groups[k]
	}
	return out
}

// replace swaps one group's foreign variants for the target's.
func (o Options) replace(ctx context.Context, g *foreignGroup, rep *Report) error {
	spec := ""
	if g.root != nil {
		spec = g.root.ID()
	} else {
		name, err := variantName(g.foreign[0], o.Target, o.Libc)
		if err != nil {
			return err
		}
		spec = name + "@" + g.foreign[0].Version
	}
	variants, err := resolveVariants(ctx, o, spec, g.root == nil)
	if err != nil {
		return err
	}
	dest := nodeModulesDir(g.foreign[0])
	var from, to []string
	for _, f := range g.foreign {
		if err := os.RemoveAll(f.Dir); err != nil {
			return fmt.Errorf("retarget %s: remove %s: %w", spec, f.Rel, err)
		}
		from = append(from, fmt.Sprintf("%s (%s)", f.ID(), platformOf(f)))
		rep.Removed = append(rep.Removed, f.ID())
	}
	for _, v := range variants {
		target := filepath.Join(dest, filepath.FromSlash(v.Name))
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		if err := filetree.Copy(v.Dir, target, filetree.CopyOptions{}); err != nil {
			return fmt.Errorf("retarget %s: copy %s: %w", spec, v.ID(), err)
		}
		to = append(to, v.ID())
		rep.Added = append(rep.Added, v.ID())
	}
	line := fmt.Sprintf("%s: %s -> %s", spec, strings.Join(from, ", "), strings.Join(to, ", "))
	rep.Replaced = append(rep.Replaced, line)
	o.Log.Info("retargeted native modules", "target", o.targetName(), "change", line)
	return nil
}

// checkHostAddons refuses addons compiled on the host (build/Release/*.node)
// for another platform or C library: there is no variant to swap them for.
func (o Options) checkHostAddons() error {
	pkgs, err := Scan(o.Dir)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		if p.PlatformSpecific() {
			continue
		}
		for _, nf := range p.NativeFiles {
			b, ok, err := binarycheck.Identify(filepath.Join(p.Dir, filepath.FromSlash(nf)))
			if err != nil {
				return err
			}
			if ok && !b.RunsWith(o.Target, o.Libc) {
				return fmt.Errorf("retarget node modules for %s: %s ships %s built for %s and declares no per-platform packages to fetch instead: use a package with prebuilt %s binaries or leave it out", o.targetName(), p.ID(), nf, b, o.targetName())
			}
		}
	}
	return nil
}

// rootDependent walks from a platform-specific package up through the
// packages that depend on it to the first one that is not itself
// platform-specific (sharp for @img/sharp-libvips-linux-x64).
func rootDependent(pkgs []Package, byName map[string][]int, f Package) *Package {
	seen := map[string]bool{f.Name: true}
	cur := f
	for {
		var parent *Package
		for i := range pkgs {
			if slices.Contains(pkgs[i].Deps, cur.Name) && !seen[pkgs[i].Name] {
				parent = &pkgs[i]
				if !parent.PlatformSpecific() {
					break
				}
			}
		}
		if parent == nil {
			if cur.Name == f.Name {
				return nil
			}
			return &cur
		}
		if !parent.PlatformSpecific() {
			return parent
		}
		seen[parent.Name] = true
		cur = *parent
	}
}

// variantName derives the target's package name from a host variant that no
// package in the tree depends on: @scope/x-linux-x64 -> @scope/x-darwin-arm64.
func variantName(f Package, target platform.Platform, libc string) (string, error) {
	for _, os := range f.OS {
		for _, cpu := range f.CPU {
			tok := os + "-" + cpu
			if i := strings.LastIndex(f.Name, tok); i >= 0 {
				rest := f.Name[i+len(tok):]
				switch {
				case target.NodeOS != "linux":
					rest = strings.TrimPrefix(strings.TrimPrefix(rest, "-gnu"), "-musl")
				case libc == Musl && strings.HasPrefix(rest, "-gnu"):
					rest = "-musl" + strings.TrimPrefix(rest, "-gnu")
				case libc == Glibc && strings.HasPrefix(rest, "-musl"):
					rest = "-gnu" + strings.TrimPrefix(rest, "-musl")
				}
				return f.Name[:i] + target.NodeOS + "-" + target.CPU + rest, nil
			}
		}
	}
	return "", fmt.Errorf("retarget node modules for %s: %s is for %s and nothing in the tree depends on it, so its %s variant cannot be derived: include the package that depends on it", target.ID, f.ID(), platformOf(f), target.ID)
}

func platformOf(p Package) string {
	return strings.Join(p.OS, ",") + "-" + strings.Join(p.CPU, ",")
}

// resolveVariants installs spec for the target into the cache (once) and
// returns the target-specific packages it brought: the root's platform
// packages and theirs, or the package itself when self is set.
func resolveVariants(ctx context.Context, o Options, spec string, self bool) ([]Package, error) {
	key := strings.ReplaceAll(spec, "/", "+") + "@" + o.targetName()
	dir := filepath.Join(o.CacheDir, key)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		if err := install(ctx, o, spec, dir); err != nil {
			return nil, err
		}
	} else {
		o.Log.Debug("native variants from cache", "spec", spec, "dir", dir)
	}
	pkgs, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	top := map[string]Package{} // what node resolves from the install root
	for _, p := range pkgs {
		if !strings.Contains(p.Rel, "/node_modules/") {
			top[p.Name] = p
		}
	}
	var out []Package
	if self {
		if p, ok := top[strings.TrimSuffix(spec, "@"+versionOf(spec))]; ok && p.SupportsLibc(o.Target, o.Libc) {
			out = append(out, p)
		}
	} else {
		// The root's platform packages and theirs, not every platform package
		// in its dependency tree (next would bring sharp's along with swc's).
		root := top[strings.TrimSuffix(spec, "@"+versionOf(spec))]
		seen := map[string]bool{}
		queue := slices.Clone(root.Deps)
		for len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			p, ok := top[name]
			if seen[name] || !ok || !p.PlatformSpecific() || !p.SupportsLibc(o.Target, o.Libc) {
				continue
			}
			seen[name] = true
			out = append(out, p)
			queue = append(queue, p.Deps...)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("retarget node modules: npm found no %s variant of %s (npm install --os=%s --cpu=%s %s installed none): the package does not support %s", o.targetName(), spec, o.Target.NodeOS, o.Target.CPU, spec, o.targetName())
	}
	return out, nil
}

// install runs npm for another platform into a fresh dir, renamed into
// place when complete so a failed or concurrent run never leaves half a cache.
func install(ctx context.Context, o Options, spec, dir string) error {
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return fmt.Errorf("retarget node modules: create cache %s: %w", o.CacheDir, err)
	}
	tmp, err := os.MkdirTemp(o.CacheDir, ".tmp-")
	if err != nil {
		return fmt.Errorf("retarget node modules: %w", err)
	}
	defer os.RemoveAll(tmp)
	// A package.json of its own stops npm from looking for a project above.
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private":true}`+"\n"), 0o644); err != nil {
		return err
	}
	args := []string{"install", "--prefix", tmp, "--os=" + o.Target.NodeOS, "--cpu=" + o.Target.CPU,
		"--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "--no-package-lock", "--prefer-offline"}
	if o.Target.NodeOS == "linux" {
		args = append(args, "--libc="+o.Libc)
	}
	args = append(args, spec)
	o.Log.Info("fetching native variants", "spec", spec, "target", o.targetName())
	cmd := exec.CommandContext(ctx, o.NPM, args...)
	cmd.Dir = tmp
	cmd.Env = npmconf.Quiet(os.Environ())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("retarget node modules: npm %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, ".complete")); statErr == nil {
			return nil // another build filled the cache first
		}
		return fmt.Errorf("retarget node modules: fill cache %s: %w", dir, err)
	}
	return nil
}

// prunePrebuilds handles packages that ship every platform's addon under
// prebuilds/<platform>-<arch>/ (node-gyp-build): keep the target's, drop the
// rest; a package with prebuilds but none for the target is an error.
func prunePrebuilds(root string, target platform.Platform) ([]string, error) {
	pkgs, err := Scan(root)
	if err != nil {
		return nil, err
	}
	var pruned []string
	for _, p := range pkgs {
		pre := filepath.Join(p.Dir, "prebuilds")
		entries, err := os.ReadDir(pre)
		if err != nil {
			continue
		}
		var keep []string
		var drop []string
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			osArch := strings.SplitN(e.Name(), "-", 2)
			if len(osArch) != 2 {
				continue
			}
			if osArch[0] == target.NodeOS && slices.Contains(strings.Split(osArch[1], "+"), target.CPU) {
				keep = append(keep, e.Name())
			} else {
				drop = append(drop, e.Name())
			}
		}
		if len(drop) == 0 {
			continue
		}
		if len(keep) == 0 {
			return pruned, fmt.Errorf("retarget node modules for %s: %s has prebuilt addons only for %s", target.ID, p.ID(), strings.Join(drop, ", "))
		}
		for _, d := range drop {
			if err := os.RemoveAll(filepath.Join(pre, d)); err != nil {
				return pruned, err
			}
			pruned = append(pruned, p.Rel+"/prebuilds/"+d)
		}
	}
	return pruned, nil
}

// versionOf returns the version part of name@version (scoped names too).
func versionOf(spec string) string {
	i := strings.LastIndex(spec, "@")
	if i <= 0 {
		return ""
	}
	return spec[i+1:]
}
