package oci

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// writeTree creates files (path → content; a trailing "*" marks executable).
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "*") {
			p, mode = strings.TrimSuffix(p, "*"), 0o755
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// fixtureTrees is a tiny web standalone tree and worker bundle.
func fixtureTrees(t testing.TB) (web, worker string) {
	t.Helper()
	root := t.TempDir()
	web, worker = filepath.Join(root, "web"), filepath.Join(root, "worker")
	writeTree(t, web, map[string]string{
		"server.js":                         "require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT)\n",
		".next/static/chunks/app.js":        "console.log('chunk')\n",
		".next/BUILD_ID":                    "fixture\n",
		"public/robots.txt":                 "User-agent: *\n",
		"node_modules/next/package.json":    `{"name":"next","version":"15.0.0"}`,
		"node_modules/.bin/next*":           "#!/bin/sh\n",
		"node_modules/sharp/build/sharp.so": "pretend native module\n",
	})
	writeTree(t, worker, map[string]string{
		"worker.mjs": "import http from 'node:http'; http.createServer((q,s)=>s.end('ok')).listen(process.env.PORT)\n",
	})
	return web, worker
}

// pushTestBase pushes a small two-platform base index built in the test
// (random layers, real os/arch in each config) and returns it pinned by digest.
func pushTestBase(t testing.TB, host, repo string, platforms []string) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		osName, arch, _ := strings.Cut(p, "/")
		cf.OS, cf.Architecture = osName, arch
		cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20.0.0", "PORT=80"}
		cf.Config.Entrypoint = []string{"docker-entrypoint.sh"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: osName, Architecture: arch},
		}})
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewDigest(host + "/" + repo + "@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(context.Background())); err != nil {
		t.Fatalf("push test base: %v", err)
	}
	return ref.String()
}

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
