package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/second-inc/second-release/internal/home"
)

// DevNodeMajor is the Node major version the dev base must carry: the one
// the payloads and the pinned bases run.
const DevNodeMajor = "20"

// HostPlatform is this machine's OCI platform ("linux/amd64"): the one the
// dev base can give a working node, copied from the host.
func HostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// hostNode is the host's node binary and the shared libraries it loads,
// ready to go into a layer at the paths the dynamic loader looks for them.
type hostNode struct {
	Version string // v20.x.y
	Binary  string // resolved path of the node binary
	// Files maps an absolute path in the image to the host file whose bytes
	// go there (the loader and each library at the path ldd resolved).
	Files map[string]string
}

// findHostNode locates node (bin, or "node" on PATH), checks it is Node 20
// and lists the libraries it needs with ldd.
func findHostNode(ctx context.Context, bin string) (*hostNode, error) {
	if bin == "" {
		bin = "node"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("dev base: no node binary (%v): install Node %s or pass --dev-node PATH", err, DevNodeMajor)
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return nil, fmt.Errorf("dev base: %w", err)
	}
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("dev base: %s --version: %w", p, err)
	}
	version := strings.TrimSpace(string(out))
	if !strings.HasPrefix(version, "v"+DevNodeMajor+".") {
		return nil, fmt.Errorf("dev base: %s is node %s, want Node %s (the images' node): pass --dev-node with a Node %s binary", p, version, DevNodeMajor, DevNodeMajor)
	}
	var ldd bytes.Buffer
	cmd := exec.CommandContext(ctx, "ldd", p)
	cmd.Stdout, cmd.Stderr = &ldd, &ldd
	if err := cmd.Run(); err != nil {
		if strings.Contains(ldd.String(), "not a dynamic executable") {
			return &hostNode{Version: version, Binary: p, Files: map[string]string{}}, nil
		}
		return nil, fmt.Errorf("dev base: ldd %s: %w: %s", p, err, strings.TrimSpace(ldd.String()))
	}
	files, err := parseLdd(ldd.String())
	if err != nil {
		return nil, fmt.Errorf("dev base: ldd %s: %w", p, err)
	}
	return &hostNode{Version: version, Binary: p, Files: files}, nil
}

// lddLine matches "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has no path and is skipped.
var lddLine = regexp.MustCompile(`^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$`)

func parseLdd(out string) (map[string]string, error) {
	files := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "=> not found") {
			return nil, fmt.Errorf("missing library: %s", strings.TrimSpace(l))
		}
		m := lddLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		files[path.Clean(m[1])] = m[1]
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no libraries in its output:\n%s", out)
	}
	return files, nil
}

// devNodeLayers caches the node layer per binary: building it compresses
// ~100 MB, and web and worker share it.
var devNodeLayers sync.Map // key: binary path -> *devNodeLayer

type devNodeLayer struct {
	once  sync.Once
	layer v1.Layer
	node  *hostNode
	err   error
}

// nodeLayer returns the layer holding node at /usr/local/bin/node and its
// libraries, written once per content to the release cache.
func nodeLayer(ctx context.Context, bin string) (v1.Layer, *hostNode, error) {
	v, _ := devNodeLayers.LoadOrStore(bin, &devNodeLayer{})
	l := v.(*devNodeLayer)
	l.once.Do(func() {
		l.node, l.err = findHostNode(ctx, bin)
		if l.err == nil {
			l.layer, l.err = writeNodeLayer(l.node)
		}
	})
	return l.layer, l.node, l.err
}

func writeNodeLayer(n *hostNode) (v1.Layer, error) {
	files := map[string]string{"/usr/local/bin/node": n.Binary}
	for dst, src := range n.Files {
		files[dst] = src
	}
	names := make([]string, 0, len(files))
	for dst := range files {
		names = append(names, dst)
	}
	sort.Strings(names)

	cache, err := home.ReleaseCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "dev-base")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dev base: %w", err)
	}
	// Name the cached layer after what goes in it (paths, sizes, mtimes), so
	// an upgraded node or glibc makes a new one.
	h := sha256.New()
	for _, dst := range names {
		st, err := os.Stat(files[dst])
		if err != nil {
			return nil, fmt.Errorf("dev base: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\n", dst, files[dst], st.Size(), st.ModTime().UnixNano())
	}
	out := filepath.Join(dir, "node-"+n.Version+"-"+runtime.GOARCH+"-"+hex.EncodeToString(h.Sum(nil))[:16]+".tar.gz")
	if _, err := os.Stat(out); err != nil {
		if err := writeNodeTar(out, names, files); err != nil {
			return nil, err
		}
	}
	return tarball.LayerFromFile(out)
}

// writeNodeTar writes the gzip tarball atomically: parents as root-owned
// directories, files with their host mode, every time the Unix epoch.
func writeNodeTar(out string, names []string, files map[string]string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".node-*.tar.gz")
	if err != nil {
		return fmt.Errorf("dev base: %w", err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0).UTC()
	dirs := map[string]bool{}
	for _, dst := range names {
		rel := strings.TrimPrefix(dst, "/")
		var parents []string
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := tw.WriteHeader(&tar.Header{Name: parents[i] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		if err := copyIntoTar(tw, rel, files[dst], epoch); err != nil {
			return fmt.Errorf("dev base: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

func copyIntoTar(tw *tar.Writer, name, src string, epoch time.Time) error {
	st, err := os.Stat(src) // follows links: libc.so.6 may point at libc-2.36.so
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if st.Mode()&0o111 != 0 {
		mode = 0o755
	}
	return copyFile(tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, ModTime: epoch, Format: tar.FormatPAX}, src)
}
