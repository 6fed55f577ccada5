package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/second-inc/second-release/internal/release/nodemods"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// craftedBase is a base whose only files are the given loader paths, like
// Alpine's /lib/ld-musl-x86_64.so.1 or Debian's /lib64/ld-linux-x86-64.so.2.
type craftedBase struct{ files []string }

func (b craftedBase) Image(_ context.Context, plat string) (v1.Image, string, error) {
	img, err := DevBaseImage(plat)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range b.files {
		if err := tw.WriteHeader(&tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: 0o755, Size: 4}); err != nil {
			return nil, "", err
		}
		tw.Write([]byte("\x7fELF"))
	}
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		return nil, "", err
	}
	img, err = mutate.AppendLayers(img, l)
	return img, "", err
}

func TestBaseLibc(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"lib/ld-musl-x86_64.so.1"}, nodemods.Musl},
		{[]string{"./lib/ld-musl-aarch64.so.1"}, nodemods.Musl},
		{[]string{"lib64/ld-linux-x86-64.so.2"}, nodemods.Glibc},
		{[]string{"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}, nodemods.Glibc},
		{[]string{"lib/ld-linux-aarch64.so.1"}, nodemods.Glibc},
		{[]string{"app/lib/ld-musl-x86_64.so.1"}, ""}, // not where a loader lives
		{nil, ""},
	} {
		img, _, err := craftedBase{tc.files}.Image(context.Background(), "linux/amd64")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := BaseLibc(img); err != nil || got != tc.want {
			t.Errorf("BaseLibc(%v) = %q, %v; want %q", tc.files, got, err, tc.want)
		}
	}
}

// hostGlibcLib is a small glibc-linked shared library of the host, standing
// in for an addon compiled on a Debian build machine.
func hostGlibcLib(t *testing.T) []byte {
	t.Helper()
	for _, p := range []string{"/lib/x86_64-linux-gnu/libdl.so.2", "/lib/aarch64-linux-gnu/libdl.so.2", "/lib64/libdl.so.2"} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Skip("needs a glibc host (libdl.so.2) for a glibc-linked addon")
	return nil
}

// A glibc-only addon cannot go into an image on a musl base: the build fails
// naming the module; on a glibc base the same tree builds.
func TestMuslBaseRefusesGlibcOnlyModule(t *testing.T) {
	web, worker := fixtureTrees(t)
	addon := filepath.Join(web, "node_modules", "gnu-only", "build", "Release", "gnu-only.node")
	writeTree(t, web, map[string]string{"node_modules/gnu-only/package.json": `{"name":"gnu-only","version":"0.1.0"}`})
	if err := os.MkdirAll(filepath.Dir(addon), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(addon, hostGlibcLib(t), 0o755); err != nil {
		t.Fatal(err)
	}
	plat := HostPlatform()
	build := func(base Base) error {
		_, err := Build(context.Background(), BuildOptions{
			Out: filepath.Join(t.TempDir(), "oci"), Platforms: []string{plat}, Source: DirSource{Web: web, Worker: worker},
			Version: "1.0.0", Epoch: testEpoch,
			MatchLibc: func(ctx context.Context, dir string, p platform.Platform, libc string) error {
				_, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dir, Target: p, Libc: libc, CacheDir: t.TempDir(), NPM: "/nonexistent/npm"})
				return err
			},
			Images: []ImageSpec{{Kind: Web, Name: "second-web", Port: 3000, Base: base}},
		})
		return err
	}
	err := build(craftedBase{[]string{"lib/ld-musl-x86_64.so.1"}})
	if err == nil || !strings.Contains(err.Error(), "gnu-only@0.1.0") || !strings.Contains(err.Error(), "glibc") {
		t.Fatalf("musl base: err = %v, want a refusal naming gnu-only@0.1.0 and glibc", err)
	}
	if err := build(craftedBase{[]string{"lib64/ld-linux-x86-64.so.2"}}); err != nil {
		t.Fatalf("glibc base: %v", err)
	}
}

// The web image on an Alpine-like base carries musl sharp, on a Debian-like
// base glibc sharp, from the same (glibc) tree.
func TestMuslBaseGetsMuslSharp(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		if testsupport.InCI() {
			t.Fatal("npm not on PATH")
		}
		t.Skip("needs npm (Node 20+) and the npm registry")
	}
	if HostPlatform() != "linux/amd64" {
		t.Skipf("fixture expectations are for linux/amd64, this is %s", HostPlatform())
	}
	web, worker := fixtureTrees(t)
	os.RemoveAll(filepath.Join(web, "node_modules"))
	writeTree(t, web, map[string]string{"package.json": `{"private":true,"dependencies":{"sharp":"0.35.5"}}`})
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--os=linux", "--cpu=x64", "--libc=glibc")
	cmd.Dir = web
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install sharp: %v\n%s", err, out)
	}
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "oci")
	built, err := Build(context.Background(), BuildOptions{
		Out: out, Platforms: []string{"linux/amd64"}, Source: DirSource{Web: web, Worker: worker},
		Version: "1.0.0", Epoch: testEpoch,
		MatchLibc: func(ctx context.Context, dir string, p platform.Platform, libc string) error {
			_, err := nodemods.Retarget(ctx, nodemods.Options{Dir: dir, Target: p, Libc: libc, CacheDir: cache})
			return err
		},
		Images: []ImageSpec{
			{Kind: Web, Name: "second-web", Port: 3000, Base: craftedBase{[]string{"lib/ld-musl-x86_64.so.1"}}},
			{Kind: Worker, Name: "second-worker", Port: 3001, Base: craftedBase{[]string{"lib64/ld-linux-x86-64.so.2"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	m := built[0].Manifests[0]
	if m.Libc != nodemods.Musl {
		t.Errorf("web on the musl base: libc %q, want musl", m.Libc)
	}
	names := strings.Join(appLayerNames(t, lp, m.DepsLayer), "\n")
	if !strings.Contains(names, "app/node_modules/@img/sharp-linuxmusl-x64/lib/sharp-linuxmusl-x64-0.35.5.node") ||
		!strings.Contains(names, "app/node_modules/@img/sharp-libvips-linuxmusl-x64/") {
		t.Errorf("musl web image lacks musl sharp:\n%s", names)
	}
	if strings.Contains(names, "@img/sharp-linux-x64") {
		t.Errorf("musl web image still carries glibc sharp")
	}
	// The source tree is untouched: the glibc image would get glibc sharp.
	if _, err := os.Stat(filepath.Join(web, "node_modules", "@img", "sharp-linux-x64")); err != nil {
		t.Errorf("the source tree was changed: %v", err)
	}
	if built[1].Manifests[0].Libc != nodemods.Glibc {
		t.Errorf("worker on the glibc base: libc %q", built[1].Manifests[0].Libc)
	}
}
