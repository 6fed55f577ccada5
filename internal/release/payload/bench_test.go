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

// BenchmarkAssemblePackVsTarCzf times assembling and packing a payload from
// already built inputs against `tar czf` of the assembled tree, interleaved
// in the same run so machine load hits both alike. It reports
// ratio = (assemble+pack) / tar czf (goal ≤ 1.25) and both tarball sizes.
//
// Web input: $SECOND_BENCH_WEB_DIR (e.g. a copy of a built
// .next/standalone), else a generated tree of similar shape (~2,000
// JavaScript files plus native blobs), so the figure is stable across runs. The `second` binary is
// this test binary (a real Go executable for the host).
func BenchmarkAssemblePackVsTarCzf(b *testing.B) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		b.Skip("needs tar on PATH")
	}
	host, err := platform.Host()
	if err != nil {
		b.Skip(err.Error())
	}
	in := b.TempDir()
	web := benchWebDir(b, in)
	worker := filepath.Join(in, "worker")
	writeFile(b, filepath.Join(worker, "worker.mjs"), synthJS(rand.New(rand.NewSource(2)), 2<<20), 0o644)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	epoch := time.Unix(1_780_000_000, 0)
	var ours, tars time.Duration
	var ourSize, tarSize int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		work := b.TempDir()
		stage := filepath.Join(work, "stage")
		start := time.Now()
		_, _, err := Assemble(ctx, Options{
			Name: "@second-inc/cli-local-" + host.ID, Version: "1.2.3", Platform: host,
			TemplateDir: filepath.Join(testsupport.RepoRoot(b), "packaging", host.ID),
			Dir:         stage, SecondBinary: self, WebDir: web, WorkerDir: worker,
			SourceDateEpoch: epoch,
		})
		if err != nil {
			b.Fatal(err)
		}
		tgz := filepath.Join(work, "payload.tgz")
		if err := pack.Tarball(ctx, stage, tgz, epoch); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		start = time.Now()
		out := filepath.Join(work, "tar.tgz")
		if o, err := exec.Command(tarPath, "czf", out, "-C", stage, ".").CombinedOutput(); err != nil {
			b.Fatalf("tar czf: %v\n%s", err, o)
		}
		tars += time.Since(start)

		ourSize, tarSize = size(b, tgz), size(b, out)
		b.StopTimer()
		os.RemoveAll(work)
		b.StartTimer()
	}
	b.ReportMetric(float64(ours)/float64(tars), "ratio")
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "ours-ms/op")
	b.ReportMetric(float64(tars.Milliseconds())/float64(b.N), "tarczf-ms/op")
	b.ReportMetric(float64(ourSize), "tgz-bytes")
	b.ReportMetric(float64(tarSize), "tarczf-bytes")
}

func size(b *testing.B, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

func benchWebDir(b *testing.B, in string) string {
	if d := os.Getenv("SECOND_BENCH_WEB_DIR"); d != "" {
		return d
	}
	// A stand-in shaped like a Next.js standalone tree: many small
	// JavaScript files (compressible) and a few large native blobs (not).
	web := filepath.Join(in, "web")
	r := rand.New(rand.NewSource(1))
	writeFile(b, filepath.Join(web, "server.js"), synthJS(r, 8<<10), 0o644)
	for i := 0; i < 2000; i++ {
		rel := fmt.Sprintf("node_modules/pkg%03d/dist/file%d.js", i/20, i%20)
		writeFile(b, filepath.Join(web, filepath.FromSlash(rel)), synthJS(r, 2<<10+r.Intn(30<<10)), 0o644)
	}
	for i := 0; i < 3; i++ {
		blob := make([]byte, 5<<20)
		r.Read(blob)
		writeFile(b, filepath.Join(web, fmt.Sprintf("node_modules/@img/native%d/lib/libvips.so", i)), string(blob), 0o755)
	}
	b.Logf("web input: generated tree in %s", web)
	return web
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
