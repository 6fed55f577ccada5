package oci

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/second-inc/second-release/internal/testsupport"
)

func TestLayerIsDeterministic(t *testing.T) {
	web, _ := fixtureTrees(t)
	spec := LayerSpec{Dir: web, Target: "/app", WritableDirs: []string{"/app/.next/cache"}, Time: testEpoch}
	l1, err := WriteLayer(spec, filepath.Join(t.TempDir(), "a.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	// Same content, different mtimes and modes on disk: same digest.
	future := time.Now().Add(48 * time.Hour)
	_ = filepath.Walk(web, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			_ = os.Chtimes(p, future, future)
			if info.Mode().IsRegular() && info.Mode()&0o111 == 0 {
				_ = os.Chmod(p, 0o600)
			}
		}
		return nil
	})
	l2, err := WriteLayer(spec, filepath.Join(t.TempDir(), "b.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Fatalf("layer digest changed with mtimes/modes: %s vs %s", d1, d2)
	}

	rc, err := l1.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	got := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		got[h.Name] = h
		if !h.ModTime.Equal(testEpoch) {
			t.Errorf("%s mtime %v, want %v", h.Name, h.ModTime, testEpoch)
		}
	}
	for i := 1; i < len(names); i++ {
		if strings.TrimSuffix(names[i-1], "/") >= strings.TrimSuffix(names[i], "/") {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
	for _, tc := range []struct {
		name     string
		mode     int64
		uid, gid int
	}{
		{"app/", 0o755, 0, 0},
		{"app/server.js", 0o644, 0, 0},
		{"app/node_modules/.bin/next", 0o755, 0, 0},
		{"app/.next/cache/", 0o755, AppUID, AppGID},
	} {
		h := got[tc.name]
		if h == nil {
			t.Errorf("layer lacks %s (has %v)", tc.name, names)
			continue
		}
		if h.Mode != tc.mode || h.Uid != tc.uid || h.Gid != tc.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", tc.name, h.Mode, h.Uid, h.Gid, tc.mode, tc.uid, tc.gid)
		}
	}
}

func TestIsHighest(t *testing.T) {
	for _, tc := range []struct {
		version string
		tags    []string
		want    bool
	}{
		{"1.2.3", nil, true},
		{"1.2.3", []string{"1.2.2", "latest", "1.2.3", "sha256-abc.sig"}, true},
		{"1.2.3", []string{"1.10.0"}, false},
		{"1.2.3", []string{"2.0.0-rc.1"}, true}, // prereleases never hold latest
		{"2.0.0-rc.1", nil, false},
		{"v1.3.0", []string{"v1.2.9"}, true},
	} {
		if got := IsHighest(tc.version, tc.tags); got != tc.want {
			t.Errorf("IsHighest(%q, %v) = %v, want %v", tc.version, tc.tags, got, tc.want)
		}
	}
}

func TestTagOnlyBaseRefused(t *testing.T) {
	_, _, err := RemoteBase{Ref: "docker.io/library/node:20-alpine"}.Image(context.Background(), "linux/amd64")
	if err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Fatalf("err = %v, want a not-pinned error", err)
	}
}

// TestBuildPushReproducible is the end-to-end path against a real
// distribution registry: a test-made base pinned by digest, two builds at
// different times with the same index digests, push by digest + tags, a
// second push uploading no blob bytes, and skopeo reading the result.
func TestBuildPushReproducible(t *testing.T) {
	reg := testsupport.StartRegistry(t)
	ctx := context.Background()
	platforms := []string{"linux/amd64", "linux/arm64"}
	base := pushTestBase(t, reg.Host, "base/node", platforms)
	web, worker := fixtureTrees(t)
	cacheDir := t.TempDir()
	opts := func(out string) BuildOptions {
		return BuildOptions{
			Out: out, Platforms: platforms, Source: DirSource{Web: web, Worker: worker},
			Version: "1.2.3", Revision: "0123456789abcdef", SourceURL: "https://github.com/second-inc/second",
			Epoch: testEpoch,
			Images: []ImageSpec{
				{Kind: Web, Name: "second-web", Port: 3000, Base: RemoteBase{Ref: base, CacheDir: cacheDir}},
				{Kind: Worker, Name: "second-worker", Port: 3001, Base: RemoteBase{Ref: base, CacheDir: cacheDir}},
			},
		}
	}
	out1 := filepath.Join(t.TempDir(), "oci")
	b1, err := Build(ctx, opts(out1))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a later build, with touched inputs
	now := time.Now()
	_ = os.Chtimes(filepath.Join(web, "server.js"), now, now)
	out2 := filepath.Join(t.TempDir(), "oci")
	b2, err := Build(ctx, opts(out2))
	if err != nil {
		t.Fatal(err)
	}
	if cached, _ := os.ReadDir(cacheDir); len(cached) != 4 { // 2 base layers x 2 platforms
		t.Errorf("base layer cache holds %d entries, want 4", len(cached))
	}
	if len(b1) != 2 || len(b2) != 2 {
		t.Fatalf("built %d and %d images, want 2", len(b1), len(b2))
	}
	for i := range b1 {
		if b1[i].Digest != b2[i].Digest {
			t.Errorf("%s: index digest differs between builds: %s vs %s", b1[i].Name, b1[i].Digest, b2[i].Digest)
		}
	}
	if b1[0].Manifests[0].AppLayer == b1[0].Manifests[1].AppLayer && b1[0].Manifests[0].Digest == b1[0].Manifests[1].Digest {
		t.Error("amd64 and arm64 manifests are identical")
	}

	checkLayout(t, out1, base)

	checkFirstPush(ctx, t, out1, reg.Host+"/second", b1)
	again, err := Push(ctx, PushOptions{Layout: out2, Prefix: reg.Host + "/second", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if p.BlobBytes != 0 {
			t.Errorf("%s: second push of unchanged images uploaded %d blob bytes, want 0", p.Name, p.BlobBytes)
		}
	}

	// A release that changes only app code keeps the node_modules layer, so
	// the push uploads the app layers and configs only.
	b3 := checkAppOnlyRelease(ctx, t, opts, web, reg.Host+"/second", b1)

	// An older stable version pushed later must not move latest.
	old := filepath.Join(t.TempDir(), "oci")
	o := opts(old)
	o.Version = "1.0.0"
	if _, err := Build(ctx, o); err != nil {
		t.Fatal(err)
	}
	pushedOld, err := Push(ctx, PushOptions{Layout: old, Prefix: reg.Host + "/second", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pushedOld[0].Tags, ",") != "1.0.0" {
		t.Errorf("older version tags = %v, want only 1.0.0", pushedOld[0].Tags)
	}
	latest, err := remote.Head(mustRef(t, reg.Host+"/second/second-web:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if latest.Digest.String() != b3[0].Digest {
		t.Errorf("latest = %s, want the 1.3.0 index %s", latest.Digest, b3[0].Digest)
	}

	// skopeo (containers/image) reads what we pushed.
	checkSkopeoReads(t, reg.Host, out1, b1)
}

// checkFirstPush pushes the layout at dir and checks the progress reports
// completed, the digests are the built ones, tags are version and latest,
// and blob bytes were uploaded.
func checkFirstPush(ctx context.Context, t *testing.T, dir, prefix string, built []Built) {
	t.Helper()
	var progMu sync.Mutex
	progress := map[string][2]int64{} // image -> last (done, total)
	pushed, err := Push(ctx, PushOptions{Layout: dir, Prefix: prefix, Version: "1.2.3",
		Progress: func(image string, done, total int64) {
			progMu.Lock()
			defer progMu.Unlock()
			progress[image] = [2]int64{done, total}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range built {
		if got := progress[p.Name]; got[1] == 0 || got[0] != got[1] {
			t.Errorf("push progress of %s ended at %d of %d bytes, want complete", p.Name, got[0], got[1])
		}
	}
	for i, p := range pushed {
		if p.Digest != built[i].Digest {
			t.Errorf("pushed %s digest %s, built %s", p.Name, p.Digest, built[i].Digest)
		}
		if strings.Join(p.Tags, ",") != "1.2.3,latest" {
			t.Errorf("%s tags = %v, want 1.2.3 and latest", p.Name, p.Tags)
		}
		if p.BlobBytes == 0 {
			t.Errorf("%s: first push uploaded no blob bytes", p.Name)
		}
	}
}

// checkAppOnlyRelease builds 1.3.0 (opts gives the build options for an
// output dir) with only web's app code changed and pushes it: the
// node_modules layer is kept, so the push uploads the app layers and configs
// only.
func checkAppOnlyRelease(ctx context.Context, t *testing.T, opts func(string) BuildOptions, web, prefix string, built []Built) []Built {
	t.Helper()
	writeTree(t, web, map[string]string{"server.js": "// v1.3.0\n"})
	next := filepath.Join(t.TempDir(), "oci")
	on := opts(next)
	on.Version = "1.3.0"
	b3, err := Build(ctx, on)
	if err != nil {
		t.Fatal(err)
	}
	var appBytes int64
	for i, m := range b3[0].Manifests {
		if m.DepsLayer == "" || m.DepsLayer != built[0].Manifests[i].DepsLayer || m.AppLayer == built[0].Manifests[i].AppLayer {
			t.Errorf("%s: deps %s (was %s), app %s (was %s): want deps unchanged, app changed", m.Platform,
				m.DepsLayer, built[0].Manifests[i].DepsLayer, m.AppLayer, built[0].Manifests[i].AppLayer)
		}
		appBytes += m.LayerSize
	}
	pushedNext, err := Push(ctx, PushOptions{Layout: next, Prefix: prefix, Version: "1.3.0"})
	if err != nil {
		t.Fatal(err)
	}
	if web := pushedNext[0]; web.BlobBytes == 0 || web.BlobBytes > appBytes+8192 {
		t.Errorf("app-only change uploaded %d blob bytes for %s; app layers are %d bytes", web.BlobBytes, web.Name, appBytes)
	}
	// The worker's layers are unchanged; only its configs (new version
	// labels) are new.
	if worker := pushedNext[1]; worker.BlobBytes > 8192 {
		t.Errorf("worker with unchanged layers uploaded %d blob bytes", worker.BlobBytes)
	}
	return b3
}

// checkSkopeoReads checks skopeo (containers/image) reads the images pushed
// to host and the OCI layout in dir.
func checkSkopeoReads(t *testing.T, host, dir string, b1 []Built) {
	t.Helper()
	skopeo := testsupport.Tool(t, "skopeo")
	// skopeo reports the digest of what the tag names (the index) and the
	// config of the platform it selected.
	for _, plat := range []struct{ arch, digest string }{{"amd64", b1[0].Digest}, {"arm64", b1[0].Digest}} {
		cmd := exec.Command(skopeo, "inspect", "--tls-verify=false", "--override-os", "linux", "--override-arch", plat.arch,
			"docker://"+host+"/second/second-web:1.2.3")
		outb, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, outb)
		}
		var info struct {
			Digest       string
			Architecture string
			Labels       map[string]string
		}
		if err := json.Unmarshal(outb, &info); err != nil {
			t.Fatalf("skopeo output: %v\n%s", err, outb)
		}
		if info.Digest != plat.digest || info.Architecture != plat.arch || info.Labels[AnnVersion] != "1.2.3" {
			t.Errorf("skopeo sees %+v, want digest %s arch %s version label 1.2.3", info, plat.digest, plat.arch)
		}
	}
	// …and the OCI layout in dist/oci, by its ref.name.
	lo, err := exec.Command(skopeo, "inspect", "--override-arch", "arm64", "oci:"+dir+":second-web:1.2.3").CombinedOutput()
	if err != nil || !strings.Contains(string(lo), b1[0].Digest) || !strings.Contains(string(lo), `"Architecture": "arm64"`) {
		t.Errorf("skopeo inspect oci layout: %v\n%s", err, lo)
	}
	raw, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+host+"/second/second-worker@"+b1[1].Digest).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 2 || idx.Annotations[AnnVersion] != "1.2.3" {
		t.Errorf("skopeo raw index = %s (err %v)", raw, err)
	}
}

// checkImageConfig checks one platform image of the layout index entry ref:
// its config (user, workdir, cmd, port, env, created, labels) and manifest
// (base annotation, layer count).
func checkImageConfig(t *testing.T, idx v1.ImageIndex, m v1.Descriptor, ref, base string) {
	t.Helper()
	img, err := idx.Image(m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	wantCmd, wantPort := "node server.js", "3000/tcp"
	if strings.HasPrefix(ref, "second-worker") {
		wantCmd, wantPort = "node worker.mjs", "3001/tcp"
	}
	if c.User != "1000:1000" || c.WorkingDir != "/app" || strings.Join(c.Cmd, " ") != wantCmd {
		t.Errorf("%s %s: user %q workdir %q cmd %v", ref, m.Platform.Architecture, c.User, c.WorkingDir, c.Cmd)
	}
	if _, ok := c.ExposedPorts[wantPort]; !ok {
		t.Errorf("%s: exposed ports %v, want %s", ref, c.ExposedPorts, wantPort)
	}
	env := strings.Join(c.Env, " ")
	for _, kv := range []string{"NODE_ENV=production", "HOSTNAME=0.0.0.0", "PORT=" + strings.TrimSuffix(wantPort, "/tcp"), "NODE_VERSION=20.0.0"} {
		if !strings.Contains(" "+env+" ", " "+kv+" ") {
			t.Errorf("%s: env %v lacks %s", ref, c.Env, kv)
		}
	}
	if strings.Contains(env, "PORT=80 ") {
		t.Errorf("%s: base PORT not overridden: %v", ref, c.Env)
	}
	if !cf.Created.Time.Equal(testEpoch) || cf.OS != m.Platform.OS || cf.Architecture != m.Platform.Architecture {
		t.Errorf("%s: created %v os/arch %s/%s", ref, cf.Created, cf.OS, cf.Architecture)
	}
	if c.Labels[AnnVersion] != "1.2.3" {
		t.Errorf("%s: labels %v", ref, c.Labels)
	}
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mf.Annotations[AnnBaseDigest] == "" || !strings.HasSuffix(base, mf.Annotations[AnnBaseDigest]) {
		t.Errorf("%s: base annotations %v, want base %s", ref, mf.Annotations, base)
	}
	wantLayers := 3 // two base layers + the app layer
	if strings.HasPrefix(ref, "second-web") {
		wantLayers = 4 // … + node_modules in a layer of its own
	}
	if len(mf.Layers) != wantLayers {
		t.Errorf("%s: %d layers, want %d", ref, len(mf.Layers), wantLayers)
	}
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkLayout reads the OCI layout back and checks each image's config.
func checkLayout(t *testing.T, dir, base string) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(rm.Manifests) != 2 {
		t.Fatalf("layout has %d entries, want 2", len(rm.Manifests))
	}
	for _, desc := range rm.Manifests {
		ref := desc.Annotations[AnnRefName]
		idx, err := root.ImageIndex(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{AnnVersion: "1.2.3", AnnRevision: "0123456789abcdef", AnnCreated: "2026-01-02T03:04:05Z", AnnSource: "https://github.com/second-inc/second"} {
			if im.Annotations[k] != want {
				t.Errorf("%s index annotation %s = %q, want %q", ref, k, im.Annotations[k], want)
			}
		}
		var archs []string
		for _, m := range im.Manifests {
			archs = append(archs, m.Platform.OS+"/"+m.Platform.Architecture)
			checkImageConfig(t, idx, m, ref, base)
		}
		if strings.Join(archs, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("%s platforms = %v", ref, archs)
		}
	}
}
