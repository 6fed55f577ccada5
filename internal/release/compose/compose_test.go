package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/second-inc/second-release/internal/testsupport"
)

var testEnv = map[string]string{
	"INTERNAL_API_TOKEN":            "t0k3n",
	"SECOND_NO_AUTH_SESSION_SECRET": "s3cr3t",
}

// load validates a Compose file the way `docker compose config` does.
func load(t *testing.T, path string, env map[string]string) *types.Project {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithEnv(envList), cli.WithName("second"), cli.WithWorkingDirectory(filepath.Dir(path)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go rejects %s: %v", path, err)
	}
	return p
}

func TestRepositoryComposeFile(t *testing.T) {
	p := load(t, filepath.Join(testsupport.RepoRoot(t), "docker-compose.yml"), testEnv)
	want := map[string]string{
		"mongo":  "mongo:8.0",
		"redis":  "redis:7-alpine",
		"worker": "ghcr.io/second-inc/second-worker:latest",
		"web":    "ghcr.io/second-inc/second-web:latest",
	}
	for svc, img := range want {
		s, err := p.GetService(svc)
		if err != nil {
			t.Fatalf("service %s: %v", svc, err)
		}
		if s.Image != img {
			t.Errorf("%s image = %q, want %q", svc, s.Image, img)
		}
	}
	mongo, _ := p.GetService("mongo")
	if got := strings.Join(mongo.Command, " "); !strings.Contains(got, "--replSet rs0") {
		t.Errorf("mongo command %q lacks --replSet rs0", got)
	}
	if mongo.HealthCheck == nil || !strings.Contains(strings.Join(mongo.HealthCheck.Test, " "), "rs.initiate") {
		t.Errorf("mongo healthcheck does not initiate the replica set: %+v", mongo.HealthCheck)
	}
	web, _ := p.GetService("web")
	envWant := map[string]string{
		"WORKER_URL":                    "http://worker:3001",
		"HOSTNAME":                      "0.0.0.0",
		"NODE_ENV":                      "production",
		"INTERNAL_API_TOKEN":            "t0k3n",
		"SECOND_NO_AUTH_SESSION_SECRET": "s3cr3t",
		"MONGODB_URI":                   "mongodb://mongo:27017/second?directConnection=true&replicaSet=rs0",
		"REDIS_URL":                     "redis://redis:6379",
		"SECOND_AUTH_MODE":              "none",
	}
	for k, v := range envWant {
		if got := web.Environment[k]; got == nil || *got != v {
			t.Errorf("web env %s = %v, want %q", k, got, v)
		}
	}
	for k := range web.Environment {
		if strings.HasPrefix(k, "NEXT_PUBLIC_") {
			t.Errorf("web env sets %s: release values must never be NEXT_PUBLIC_*", k)
		}
	}
	for dep, cond := range map[string]string{"mongo": "service_healthy", "redis": "service_healthy", "worker": "service_healthy"} {
		if d, ok := web.DependsOn[dep]; !ok || d.Condition != cond {
			t.Errorf("web depends_on %s = %+v, want condition %s", dep, d, cond)
		}
	}
	worker, _ := p.GetService("worker")
	if _, ok := worker.DependsOn["mongo"]; !ok {
		t.Error("worker does not wait for mongo")
	}
}

func TestComposeRequiresSecrets(t *testing.T) {
	path := filepath.Join(testsupport.RepoRoot(t), "docker-compose.yml")
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithEnv(nil), cli.WithName("second"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "INTERNAL_API_TOKEN") {
		t.Fatalf("loading without INTERNAL_API_TOKEN: err = %v, want it named", err)
	}
}

func TestRender(t *testing.T) {
	src := filepath.Join(testsupport.RepoRoot(t), "docker-compose.yml")
	out := filepath.Join(t.TempDir(), "compose", "docker-compose.release.yml")
	web := "127.0.0.1:5000/second/second-web@sha256:" + strings.Repeat("a", 64)
	worker := "127.0.0.1:5000/second/second-worker@sha256:" + strings.Repeat("b", 64)
	if err := Render(RenderOptions{Source: src, Out: out, Version: "1.2.3",
		Pins: map[string]string{"web": web, "worker": worker}}); err != nil {
		t.Fatal(err)
	}
	p := load(t, out, testEnv)
	for svc, want := range map[string]string{"web": web, "worker": worker, "mongo": "mongo:8.0"} {
		s, _ := p.GetService(svc)
		if s.Image != want {
			t.Errorf("%s image = %q, want %q", svc, s.Image, want)
		}
	}
	s, _ := p.GetService("web")
	if v := s.Environment["SECOND_RELEASE_VERSION"]; v == nil || *v != "1.2.3" {
		t.Errorf("SECOND_RELEASE_VERSION = %v, want 1.2.3", v)
	}
	imgs, err := Images(out, func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range imgs {
		got[s.Name] = s.Image
	}
	if got["web"] != web || got["worker"] != worker || got["redis"] != "redis:7-alpine" {
		t.Errorf("Images = %v", got)
	}

	for _, tc := range []struct {
		name string
		pins map[string]string
		want string
	}{
		{"tag only", map[string]string{"web": "example.com/second-web:1.2.3"}, "not pinned by digest"},
		{"unknown service", map[string]string{"api": web}, `no service "api"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Render(RenderOptions{Source: src, Out: filepath.Join(t.TempDir(), "x.yml"), Pins: tc.pins})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestImagesInterpolates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(path, []byte("services:\n  a:\n    image: ${P:-x.io}/a:${V}\n  b:\n    build: .\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	imgs, err := Images(path, func(k string) (string, bool) {
		if k == "V" {
			return "9", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Image != "x.io/a:9" {
		t.Fatalf("Images = %+v", imgs)
	}
}
