package payload

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// BenchmarkPayload times what a release engineer waits for per platform,
// on a tree of the real product's shape: assembling the payload dir from the
// built trees (copying, and hard-linking as the build does), packing it,
// both together, and `tar czf` of the same dir for reference.
//
// Inputs: $SECOND_BENCH_WEB_DIR and $SECOND_BENCH_WORKER_DIR (copies of a
// built .next/standalone and worker), else generated trees of the real
// shape: a Next standalone of ~3,600 entries and a worker with a ~200 MB
// native binary. The `second` binary is this test binary.
func BenchmarkPayload(b *testing.B) {
	host, err := platform.Host()
	if err != nil {
		b.Skip(err.Error())
	}
	in := b.TempDir()
	web, worker := benchWebDir(b, in), benchWorkerDir(b, in)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	epoch := time.Unix(1_780_000_000, 0)
	// Each assembly gets its own copy of the trees, as the build's
	// per-platform staging copy, made outside the timer.
	assemble := func(b *testing.B, work string, link bool) string {
		b.Helper()
		b.StopTimer()
		w, k := filepath.Join(work, "in", "web"), filepath.Join(work, "in", "worker")
		if err := os.MkdirAll(filepath.Join(work, "in"), 0o755); err != nil {
			b.Fatal(err)
		}
		for src, dst := range map[string]string{web: w, worker: k} {
			if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
				b.Fatalf("cp -a %s: %v\n%s", src, err, out)
			}
		}
		b.StartTimer()
		stage := filepath.Join(work, "stage")
		if _, _, err := Assemble(ctx, Options{
			Name: "@second-inc/cli-local-" + host.ID, Version: "1.2.3", Platform: host,
			TemplateDir: filepath.Join(testsupport.RepoRoot(b), "packaging", host.ID),
			Dir:         stage, SecondBinary: self, WebDir: w, WorkerDir: k, LinkTrees: link,
			SourceDateEpoch: epoch,
		}); err != nil {
			b.Fatal(err)
		}
		return stage
	}
	for _, link := range []bool{false, true} {
		name := map[bool]string{false: "assemble copy", true: "assemble link"}[link]
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				work := b.TempDir()
				assemble(b, work, link)
				b.StopTimer()
				os.RemoveAll(work)
				b.StartTimer()
			}
		})
	}
	b.Run("pack", func(b *testing.B) {
		b.StopTimer()
		work := b.TempDir()
		stage := assemble(b, work, true)
		b.StartTimer()
		var n int64
		for i := 0; i < b.N; i++ {
			tgz := filepath.Join(work, "payload.tgz")
			if err := pack.Tarball(ctx, stage, tgz, epoch); err != nil {
				b.Fatal(err)
			}
			n = size(b, tgz)
		}
		b.ReportMetric(float64(n), "tgz-bytes")
		b.ReportMetric(float64(treeBytes(b, stage)), "tree-bytes")
	})
	b.Run("whole", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			work := b.TempDir()
			stage := assemble(b, work, true)
			if err := pack.Tarball(ctx, stage, filepath.Join(work, "payload.tgz"), epoch); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(work)
			b.StartTimer()
		}
	})
	b.Run("tar czf", func(b *testing.B) {
		b.StopTimer()
		work := b.TempDir()
		stage := assemble(b, work, true)
		b.StartTimer()
		var n int64
		for i := 0; i < b.N; i++ {
			out := filepath.Join(work, "tar.tgz")
			if o, err := exec.Command("tar", "czf", out, "-C", stage, ".").CombinedOutput(); err != nil {
				b.Fatalf("tar czf: %v\n%s", err, o)
			}
			n = size(b, out)
		}
		b.ReportMetric(float64(n), "tgz-bytes")
	})
}

func size(b *testing.B, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

func treeBytes(b *testing.B, root string) (n int64) {
	filepath.Walk(root, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// benchWebDir is a Next.js standalone tree: server.js, .next/server and
// .next/static chunks, and node_modules of many small JavaScript files with
// a few native blobs; ~3,600 files and directories in all.
func benchWebDir(b *testing.B, in string) string {
	if d := os.Getenv("SECOND_BENCH_WEB_DIR"); d != "" {
		return d
	}
	web := filepath.Join(in, "web")
	r := rand.New(rand.NewSource(1))
	writeFile(b, filepath.Join(web, "server.js"), synthJS(r, 8<<10), 0o644)
	writeFile(b, filepath.Join(web, "package.json"), `{"name":"web","private":true}`, 0o644)
	for i := 0; i < 300; i++ {
		writeFile(b, filepath.Join(web, fmt.Sprintf(".next/server/app/route%02d/page%d.js", i/6, i%6)), synthJS(r, 1<<10+r.Intn(40<<10)), 0o644)
	}
	for i := 0; i < 200; i++ {
		writeFile(b, filepath.Join(web, fmt.Sprintf(".next/static/chunks/%04x.js", i)), synthJS(r, 2<<10+r.Intn(60<<10)), 0o644)
	}
	// node_modules: 420 packages of 6 files each in dist/ and lib/.
	for i := 0; i < 2520; i++ {
		dir := []string{"dist", "lib"}[i%2]
		rel := fmt.Sprintf("node_modules/pkg%03d/%s/file%d.js", i/6, dir, i%6)
		writeFile(b, filepath.Join(web, filepath.FromSlash(rel)), synthJS(r, 1<<10+r.Intn(24<<10)), 0o644)
	}
	for i := 0; i < 3; i++ {
		writeFile(b, filepath.Join(web, fmt.Sprintf("node_modules/@img/native%d/lib/libvips.so", i)), nativeBlob(r, 5<<20), 0o755)
	}
	b.Logf("web input: generated tree in %s", web)
	return web
}

// benchWorkerDir is the bundled worker next to its native SDK (~200 MB).
func benchWorkerDir(b *testing.B, in string) string {
	if d := os.Getenv("SECOND_BENCH_WORKER_DIR"); d != "" {
		return d
	}
	worker := filepath.Join(in, "worker")
	r := rand.New(rand.NewSource(2))
	writeFile(b, filepath.Join(worker, "worker.mjs"), synthJS(r, 2<<20), 0o644)
	writeFile(b, filepath.Join(worker, "node_modules/@vendor/sdk-native/package.json"), `{"name":"@vendor/sdk-native"}`, 0o644)
	writeFile(b, filepath.Join(worker, "node_modules/@vendor/sdk-native/bin/sdk.node"), nativeBlob(r, 200<<20), 0o755)
	b.Logf("worker input: generated tree in %s", worker)
	return worker
}

// nativeBlob is machine-code-like: half random, half repeated runs, so it
// compresses about as much as a real shared library.
func nativeBlob(r *rand.Rand, n int) string {
	buf := make([]byte, n)
	r.Read(buf)
	for off := 0; off+8192 <= n; off += 16384 {
		copy(buf[off+4096:off+8192], buf[off:off+4096])
		for i := off + 8192; i < off+12288 && i < n; i++ {
			buf[i] = 0
		}
	}
	return string(buf)
}

var words = strings.Fields("const let function return if else for while import export default from this new class extends async await true false null undefined require module exports value key props state render")

func synthJS(r *rand.Rand, n int) string {
	var sb strings.Builder
	for sb.Len() < n {
		sb.WriteString(words[r.Intn(len(words))])
		if r.Intn(8) == 0 {
			fmt.Fprintf(&sb, "_%x", r.Intn(1<<16))
		}
		if r.Intn(12) == 0 {
			sb.WriteString(";\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}
