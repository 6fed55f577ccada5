package oci

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/testsupport"
)

// Each platform's image must carry the native modules of its own payload.
func TestPayloadSourcePerArchitecture(t *testing.T) {
	dist := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dist, "npm"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel := &artifact.Release{Version: "1.2.3"}
	for _, p := range []struct{ id, mod string }{{"linux-x64", "sharp-linux-x64"}, {"linux-arm64", "sharp-linux-arm64"}} {
		rp := "npm/cli-local-" + p.id + "-1.2.3.tgz"
		testsupport.WriteNpmTarball(t, filepath.Join(dist, rp), map[string]string{
			"package.json":       "{}",
			"bin/second":         "binary",
			"dist/web/server.js": "server",
			"dist/web/node_modules/@img/" + p.mod + "/x.node":  p.mod,
			"dist/worker/worker.mjs":                           "worker",
			"dist/worker/node_modules/@img/" + p.mod + "/y.so": p.mod,
		})
		rel.Artifacts = append(rel.Artifacts, artifact.Artifact{Kind: artifact.KindPayload, Platform: p.id, Path: rp})
	}
	out := filepath.Join(dist, "oci")
	built, err := Build(context.Background(), BuildOptions{
		Out: out, Platforms: []string{"linux/amd64", "linux/arm64"}, Source: PayloadSource{Dist: dist, Release: rel},
		Version: "1.2.3", Epoch: testEpoch,
		Images: []ImageSpec{
			{Kind: Web, Name: "second-web", Port: 3000, Base: DevBase{}},
			{Kind: Worker, Name: "second-worker", Port: 3001, Base: DevBase{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range built {
		for _, m := range b.Manifests {
			want, other := "sharp-linux-x64", "sharp-linux-arm64"
			if m.Platform == "linux/arm64" {
				want, other = other, want
			}
			names := appLayerNames(t, lp, m.AppLayer)
			if m.DepsLayer != "" {
				names = append(names, appLayerNames(t, lp, m.DepsLayer)...)
			}
			joined := strings.Join(names, "\n")
			if !strings.Contains(joined, want) || strings.Contains(joined, other) {
				t.Errorf("%s %s app layer has %v, want %s and not %s", b.Name, m.Platform, names, want, other)
			}
			if strings.Contains(joined, "bin/second") || strings.Contains(joined, "package.json") {
				t.Errorf("%s %s: payload files outside dist/web|dist/worker leaked in: %v", b.Name, m.Platform, names)
			}
		}
	}

	// A platform without a payload is a clear error.
	_, err = Build(context.Background(), BuildOptions{
		Out: filepath.Join(t.TempDir(), "oci"), Platforms: []string{"linux/amd64"},
		Source:  PayloadSource{Dist: dist, Release: &artifact.Release{Version: "1.2.3"}},
		Version: "1.2.3", Epoch: testEpoch,
		Images: []ImageSpec{{Kind: Web, Name: "second-web", Port: 3000, Base: DevBase{}}},
	})
	if err == nil || !strings.Contains(err.Error(), "no linux-x64 payload") {
		t.Fatalf("err = %v, want a missing-payload error", err)
	}
}

func appLayerNames(t *testing.T, lp layout.Path, digest string) []string {
	t.Helper()
	rc, err := os.Open(filepath.Join(string(lp), "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}
