package devstack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/ports"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/stack"
	"github.com/second-inc/second-release/internal/local/state"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkout lays out a minimal product checkout.
func checkout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "apps/web/package.json"), `{"scripts":{"dev":"next dev"}}`)
	write(t, filepath.Join(dir, "apps/worker/package.json"), `{"scripts":{"dev":"node --watch src/index.mjs"}}`)
	write(t, filepath.Join(dir, "apps/worker/src/index.mjs"), "")
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return dir
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFindRepo(t *testing.T) {
	repo := checkout(t)
	got, err := FindRepo(filepath.Join(repo, "apps", "worker", "src"))
	if err != nil || got != repo {
		t.Errorf("FindRepo from a subdir = %q, %v; want %q", got, err, repo)
	}
	_, err = FindRepo(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "apps/web/package.json") || !strings.Contains(err.Error(), "--repo") {
		t.Errorf("outside a checkout: %v", err)
	}
}

func TestID(t *testing.T) {
	repo := checkout(t)
	other := checkout(t)
	id, err := ID(repo, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ID(repo, env(nil))
	otherID, _ := ID(other, env(nil))
	if id != again || id == otherID || !validID.MatchString(id) {
		t.Errorf("ids %q %q %q: want stable, per path, DNS-safe", id, again, otherID)
	}
	if _, err := exec.LookPath("git"); err == nil {
		g := func(args ...string) {
			cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=a@b.c", "-c", "user.name=a"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		g("init", "-q", "-b", "Feature/Shiny_Thing")
		g("commit", "-q", "--allow-empty", "-m", "x")
		id, _ := ID(repo, env(nil))
		if !strings.HasPrefix(id, "feature-shiny-thing-") || len(id) != len("feature-shiny-thing-")+6 {
			t.Errorf("branch id %q", id)
		}
	}
	if id, err := ID(repo, env(map[string]string{"SECOND_DEV_ID": "Mine"})); err != nil || id != "mine" {
		t.Errorf("SECOND_DEV_ID: %q %v", id, err)
	}
	if _, err := ID(repo, env(map[string]string{"SECOND_DEV_ID": "a.b"})); err == nil || !strings.Contains(err.Error(), "SECOND_DEV_ID") {
		t.Errorf("bad SECOND_DEV_ID accepted: %v", err)
	}
}

func TestInfoRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), InfoFile)
	want := Info{URL: "http://x.second.localhost:1355", WebPort: 3000, WorkerPort: 3001, MongoPort: 40000, RedisPort: 40001, DevID: "x", DataDir: "/r/.second-dev"}
	if err := WriteInfo(p, want); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	wantText := "url=http://x.second.localhost:1355\nweb_port=3000\nworker_port=3001\nmongo_port=40000\nredis_port=40001\ndev_id=x\ndata_dir=/r/.second-dev\n"
	if string(b) != wantText {
		t.Errorf("file:\n%s\nwant:\n%s", b, wantText)
	}
	got, err := ReadInfo(p)
	if err != nil || got != want {
		t.Errorf("read back %+v, %v", got, err)
	}
}

func TestEnv(t *testing.T) {
	in := envInput{ID: "feat-1", URL: "http://feat-1.second.localhost:1355", WebPort: 3000, WorkerPort: 3001,
		Infra:         stack.EnvInput{MongoPort: 40000, RedisPort: 40001, MongoPassword: "mpw", RedisPassword: "rpw"},
		Secrets:       secrets.Set{SessionSecret: "sess", InternalAPIToken: "tok"},
		WorkspacesDir: "/r/.second-dev/data/workspaces", ProxyHost: "feat-1.second.localhost", DisableTelemetry: true,
		Environ: []string{"PATH=/bin", "ANTHROPIC_API_KEY=k", "SECOND_LOCAL_CLI_URL=http://old", "SECOND_DEV_ALLOWED_ORIGINS=tunnel.example.test"}}
	web := map[string]string{}
	for _, kv := range webEnv(in) {
		k, v, _ := strings.Cut(kv, "=")
		web[k] = v
	}
	for k, want := range map[string]string{
		"PORT": "3000", "HOSTNAME": "127.0.0.1", "SECOND_AUTH_MODE": "none", "SECOND_NO_AUTH_SESSION_SECRET": "sess",
		"INTERNAL_API_TOKEN": "tok", "SECOND_PUBLIC_URL": in.URL, "WEB_URL": "http://127.0.0.1:3000",
		"WORKER_URL": "http://127.0.0.1:3001", "TOOL_EXECUTE_URL": "http://127.0.0.1:3000/api/internal/tool-execute",
		"SECOND_DEV_ALLOWED_ORIGINS": "feat-1.second.localhost,*.second.localhost,tunnel.example.test",
		"SECOND_POSTHOG_DISABLED":    "1", "SECOND_TELEMETRY_DISABLED": "1", "ANTHROPIC_API_KEY": "k", "PATH": "/bin",
	} {
		if web[k] != want {
			t.Errorf("web %s=%q, want %q", k, web[k], want)
		}
	}
	if !strings.Contains(web["MONGODB_URI"], ":mpw@127.0.0.1:40000/second?") || !strings.Contains(web["MONGODB_URI"], "directConnection=true&replicaSet=rs0") {
		t.Errorf("MONGODB_URI %q", web["MONGODB_URI"])
	}
	if web["REDIS_URL"] != "redis://:rpw@127.0.0.1:40001" {
		t.Errorf("REDIS_URL %q", web["REDIS_URL"])
	}
	if _, ok := web["SECOND_LOCAL_CLI_URL"]; ok {
		t.Error("the runtime's SECOND_LOCAL_* leaked into the dev web server")
	}
	worker := strings.Join(workerEnv(in), "\n") + "\n"
	for _, want := range []string{"PORT=3001\n", "HOST=127.0.0.1\n", "WEB_URL=http://127.0.0.1:3000\n", "WORKSPACES_DIR=/r/.second-dev/data/workspaces\n", "INTERNAL_API_TOKEN=tok\n"} {
		if !strings.Contains(worker, want) {
			t.Errorf("worker env lacks %q", want)
		}
	}
}

func TestChoosePorts(t *testing.T) {
	taken, err := ports.Any()
	if err != nil {
		t.Fatal(err)
	}
	holdPort(t, taken)
	repo := checkout(t)
	s := &Stack{Repo: repo, Layout: home.Layout{Root: filepath.Join(repo, DataDirName)}}
	pin, _ := ports.Any()
	s.opts.Getenv = env(map[string]string{"MONGO_PORT": itoa(pin)})
	r := &run{Stack: s}
	if err := r.choosePorts(keptInfra{}, nil); err != nil {
		t.Fatal(err)
	}
	if r.ports["mongo"] != pin {
		t.Errorf("MONGO_PORT not honoured: %v", r.ports)
	}
	s.opts.Getenv = env(map[string]string{"REDIS_PORT": itoa(taken)})
	err = r.choosePorts(keptInfra{}, nil)
	if err == nil || !strings.Contains(err.Error(), "REDIS_PORT") || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a taken pinned port: %v", err)
	}
	s.opts.Getenv = env(map[string]string{"WEB_PORT": "x"})
	if err := r.choosePorts(keptInfra{}, nil); err == nil || !strings.Contains(err.Error(), `WEB_PORT="x"`) {
		t.Errorf("a bad WEB_PORT: %v", err)
	}
	s.opts.Getenv = env(nil)
	if err := r.choosePorts(keptInfra{MongoPort: 41000, RedisPort: 41001}, nil); err != nil || r.ports["mongo"] != 41000 || r.ports["redis"] != 41001 {
		t.Errorf("kept infrastructure ports: %v %v", r.ports, err)
	}
}

func TestDevScriptMissing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "package.json"), `{"scripts":{"start":"node x"}}`)
	_, err := devScript(dir)
	if err == nil || !strings.Contains(err.Error(), `has no "dev" script`) || !strings.Contains(err.Error(), "package.json") {
		t.Errorf("err %v", err)
	}
}

func TestOutputPrefixesLines(t *testing.T) {
	var b bytes.Buffer
	o := &output{w: &b}
	o.prefixed("web").Write([]byte("one\ntwo"))
	mongoEcho{o.prefixed("mongo")}.Write([]byte(`{"s":"I","msg":"noise"}` + "\n"))
	mongoEcho{o.prefixed("mongo")}.Write([]byte(`{"s":"W","msg":"warn"}` + "\n"))
	want := "web    | one\nweb    | two\nmongo  | {\"s\":\"W\",\"msg\":\"warn\"}\n"
	if b.String() != want {
		t.Errorf("got %q want %q", b.String(), want)
	}
	b.Reset()
	(&output{w: &b, color: true}).prefixed("worker").Write([]byte("x\n"))
	if !strings.HasPrefix(b.String(), "\x1b[33mworker | \x1b[0mx") {
		t.Errorf("coloured %q", b.String())
	}
}

func TestRegistryDropsDeadStacks(t *testing.T) {
	g := &Registry{Dir: t.TempDir()}
	live, dead := t.TempDir(), t.TempDir()
	lock, err := state.TryLock(home.Layout{Root: live}.LockFile())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	for id, dir := range map[string]string{"live": live, "dead": dead} {
		if err := g.Put(Record{Info: Info{DevID: id, DataDir: dir, WebPort: 3000}, PID: 1, StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := g.Running()
	if err != nil || len(recs) != 1 || recs[0].DevID != "live" {
		t.Fatalf("running %+v %v", recs, err)
	}
	if _, err := os.Stat(filepath.Join(g.Dir, "dead.json")); !os.IsNotExist(err) {
		t.Error("the dead stack's record was kept")
	}
	if port, ok := g.Lookup("live"); !ok || port != 3000 {
		t.Errorf("lookup live: %d %v", port, ok)
	}
	if _, ok := g.Lookup("dead"); ok {
		t.Error("lookup dead found it")
	}
	ids := []string{}
	for _, b := range g.List() {
		ids = append(ids, b.ID)
	}
	if !slices.Equal(ids, []string{"live"}) {
		t.Errorf("list %v", ids)
	}
}
