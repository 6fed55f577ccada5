package oci

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport"
)

// benchTrees writes a web tree shaped like a Next standalone output (many
// small, partly compressible files under node_modules) and a worker bundle.
func benchTrees(b *testing.B) (web, worker string, total int64) {
	b.Helper()
	root := b.TempDir()
	web, worker = filepath.Join(root, "web"), filepath.Join(root, "worker")
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(dir string, files, maxSize int) {
		for i := 0; i < files; i++ {
			p := filepath.Join(dir, "node_modules", fmt.Sprintf("pkg%03d", i%150), "lib", fmt.Sprintf("f%05d.js", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			n := 512 + rng.IntN(maxSize)
			buf := make([]byte, n)
			for j := range buf { // half text-like, half random: roughly 2:1 gzip
				if j%2 == 0 {
					buf[j] = byte('a' + j%26)
				} else {
					buf[j] = byte(rng.Uint32())
				}
			}
			if err := os.WriteFile(p, buf, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(n)
		}
	}
	write(web, 3000, 12<<10)
	write(worker, 300, 12<<10)
	for _, f := range []string{filepath.Join(web, "server.js"), filepath.Join(worker, "worker.mjs")} {
		if err := os.WriteFile(f, []byte("// entry\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return web, worker, total
}

// writeAndHash is the floor: every byte of both trees, once per platform,
// written to one file and hashed with sha256.
func writeAndHash(b *testing.B, dirs []string, platforms int) {
	b.Helper()
	out, err := os.CreateTemp(b.TempDir(), "floor")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	h := sha256.New()
	w := io.MultiWriter(out, h)
	for p := 0; p < platforms; p++ {
		for _, d := range dirs {
			err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
				if err != nil || !e.Type().IsRegular() {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = io.Copy(w, f)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	_ = h.Sum(nil)
}

// BenchmarkBuildPush measures `release images --push` (two images × two
// platforms, DevBase, a fresh repository each time so every blob uploads)
// against writing and hashing the same bytes, and the blob bytes a second
// push of the unchanged images uploads (goal: 0).
//
//	go test -run '^$' -bench BuildPush -benchtime 3x ./internal/release/oci/
func BenchmarkBuildPush(b *testing.B) {
	reg := testsupport.StartRegistry(b)
	web, worker, total := benchTrees(b)
	platforms := []string{"linux/amd64", "linux/arm64"}
	ctx := context.Background()
	var buildPush, floor time.Duration
	var firstBytes, secondBytes, appOnlyBytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := filepath.Join(b.TempDir(), "oci")
		start := time.Now()
		_, err := Build(ctx, BuildOptions{
			Out: out, Platforms: platforms, Source: DirSource{Web: web, Worker: worker},
			Version: "1.0.0", Epoch: testEpoch,
			Images: []ImageSpec{
				{Kind: Web, Name: "second-web", Port: 3000, Base: DevBase{}},
				{Kind: Worker, Name: "second-worker", Port: 3001, Base: DevBase{}},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		prefix := fmt.Sprintf("%s/bench%d", reg.Host, i)
		first, err := Push(ctx, PushOptions{Layout: out, Prefix: prefix, Version: "1.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		buildPush += time.Since(start)

		b.StopTimer()
		second, err := Push(ctx, PushOptions{Layout: out, Prefix: prefix, Version: "1.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		for j := range first {
			firstBytes += first[j].BlobBytes
			secondBytes += second[j].BlobBytes
		}
		// The next release changes only app code (server.js).
		if err := os.WriteFile(filepath.Join(web, "server.js"), []byte(fmt.Sprintf("// release %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
		next := filepath.Join(b.TempDir(), "oci")
		if _, err := Build(ctx, BuildOptions{
			Out: next, Platforms: platforms, Source: DirSource{Web: web, Worker: worker},
			Version: "1.0.1", Epoch: testEpoch,
			Images: []ImageSpec{
				{Kind: Web, Name: "second-web", Port: 3000, Base: DevBase{}},
				{Kind: Worker, Name: "second-worker", Port: 3001, Base: DevBase{}},
			},
		}); err != nil {
			b.Fatal(err)
		}
		third, err := Push(ctx, PushOptions{Layout: next, Prefix: prefix, Version: "1.0.1"})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range third {
			appOnlyBytes += p.BlobBytes
		}
		fstart := time.Now()
		writeAndHash(b, []string{web, worker}, len(platforms))
		floor += time.Since(fstart)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(total*int64(len(platforms)))/1e6, "MB-app-bytes/op")
	b.ReportMetric(buildPush.Seconds()/n, "s-build+push/op")
	b.ReportMetric(floor.Seconds()/n, "s-write+hash/op")
	b.ReportMetric(buildPush.Seconds()/floor.Seconds(), "ratio")
	b.ReportMetric(float64(firstBytes)/n, "blob-bytes-1st-push/op")
	b.ReportMetric(float64(secondBytes)/n, "blob-bytes-2nd-push/op")
	b.ReportMetric(float64(appOnlyBytes)/n, "blob-bytes-app-only-release/op")
}
