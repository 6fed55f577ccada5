package imagerun_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/imagerun"
	"github.com/second-inc/second-release/internal/release/oci"
	"github.com/second-inc/second-release/internal/testsupport"
)

// The apps check their own lockdown: /app is read-only (EROFS) and the
// directory they write is writable; otherwise the health route says 500.
const webServer = `const fs = require('fs'), http = require('http');
function locked() {
  try { fs.writeFileSync('/app/probe', 'x'); return 'root filesystem is writable'; } catch (e) { if (e.code !== 'EROFS') return 'unexpected ' + e.code; }
  try { fs.writeFileSync('/app/.next/cache/probe', 'x'); } catch (e) { return 'cache dir not writable: ' + e.code; }
  return '';
}
http.createServer((q, s) => {
  if (q.url !== '/api/health') { s.statusCode = 404; return s.end(); }
  const why = locked();
  s.statusCode = why ? 500 : 200;
  s.end(JSON.stringify({ ok: !why, why, uid: process.getuid() }));
}).listen(+process.env.PORT, process.env.HOSTNAME);
`

const workerServer = `import fs from 'node:fs'; import http from 'node:http';
http.createServer((q, s) => {
  if (q.url !== '/health') { s.statusCode = 404; return s.end(); }
  let why = '';
  try { fs.writeFileSync(process.env.WORKSPACES_DIR + '/probe', 'x'); } catch (e) { why = 'workspaces not writable: ' + e.code; }
  s.statusCode = why ? 500 : 200;
  s.end(JSON.stringify({ ok: !why, why }));
}).listen(+process.env.PORT, process.env.HOST);
`

func write(t testing.TB, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// needPodman skips (fails in CI) where podman cannot run containers.
func needPodman(tb testing.TB) {
	tb.Helper()
	if why := (imagerun.Podman{}).Usable(context.Background()); why != "" {
		if testsupport.InCI() {
			tb.Fatal(why)
		}
		tb.Skip(why)
	}
}

// pushFixtureImages builds both host-platform images on the dev base from
// small apps with real health routes and pushes them to a real registry.
func pushFixtureImages(tb testing.TB) (web, worker string) {
	tb.Helper()
	reg := testsupport.StartRegistry(tb)
	ctx := context.Background()
	root := tb.TempDir()
	webDir, workerDir := filepath.Join(root, "web"), filepath.Join(root, "worker")
	write(tb, filepath.Join(webDir, "server.js"), webServer)
	write(tb, filepath.Join(webDir, ".next", "BUILD_ID"), "fixture\n")
	write(tb, filepath.Join(workerDir, "worker.mjs"), workerServer)
	layout := filepath.Join(root, "oci")
	if _, err := oci.Build(ctx, oci.BuildOptions{
		Out: layout, Platforms: []string{oci.HostPlatform()}, Source: oci.DirSource{Web: webDir, Worker: workerDir},
		Version: "1.0.0", Epoch: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Images: []oci.ImageSpec{
			{Kind: oci.Web, Name: "second-web", Port: 3000, Base: oci.DevBase{}},
			{Kind: oci.Worker, Name: "second-worker", Port: 3001, Base: oci.DevBase{}},
		},
	}); err != nil {
		tb.Fatal(err)
	}
	pushed, err := oci.Push(ctx, oci.PushOptions{Layout: layout, Prefix: reg.Host + "/second", Version: "1.0.0"})
	if err != nil {
		tb.Fatal(err)
	}
	return pushed[0].Ref, pushed[1].Ref
}

func apps(tb testing.TB, web, worker string) []imagerun.App {
	webPort, workerPort := testsupport.FreePort(tb), testsupport.FreePort(tb)
	webEnv, workerEnv := imagerun.ContractEnv("1.0.0", webPort, workerPort)
	return []imagerun.App{
		{Name: "web", Ref: web, Port: webPort, Health: "/api/health", Writable: oci.Web.WritableDirs(), Env: webEnv},
		{Name: "worker", Ref: worker, Port: workerPort, Health: "/health", Writable: oci.Worker.WritableDirs(), Env: workerEnv},
	}
}

// Both host-platform images, built on the dev base and pushed to a real
// registry, pull with podman and answer their health routes as uid 1000 on
// a read-only root filesystem, writing only to their tmpfs directories.
func TestHostImagesRunUnderPodman(t *testing.T) {
	needPodman(t)
	web, worker := pushFixtureImages(t)
	res, err := imagerun.Run(context.Background(), imagerun.Options{Insecure: true}, apps(t, web, worker))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != 200 || r.User != "1000:1000" {
			t.Errorf("%s: status %d as %s, want 200 as 1000:1000", r.Name, r.Status, r.User)
		}
		t.Logf("%s: pulled in %s, healthy %s after podman run", r.Name, r.Pull.Round(time.Millisecond), r.Healthy.Round(time.Millisecond))
	}
}

// BenchmarkRunToHealthy measures, per image, the time from `podman run` to
// the first 200 from its health route (the pull is not counted), and the
// pull from the loopback registry into an empty podman store.
//
//	go test -run '^$' -bench RunToHealthy -benchtime 3x ./internal/release/imagerun/
func BenchmarkRunToHealthy(b *testing.B) {
	needPodman(b)
	web, worker := pushFixtureImages(b)
	sum := map[string]time.Duration{}
	var pull time.Duration
	for i := 0; i < b.N; i++ {
		res, err := imagerun.Run(context.Background(), imagerun.Options{Insecure: true}, apps(b, web, worker))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			sum[r.Name] += r.Healthy
			pull += r.Pull
		}
	}
	n := float64(b.N)
	b.ReportMetric(sum["web"].Seconds()/n, "s-web-run-to-healthy/op")
	b.ReportMetric(sum["worker"].Seconds()/n, "s-worker-run-to-healthy/op")
	b.ReportMetric(pull.Seconds()/n, "s-pull-both/op")
}
