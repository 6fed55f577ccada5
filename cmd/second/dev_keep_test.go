package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/devstack"
	"github.com/second-inc/second-release/internal/testsupport"
)

// lightCheckout is a product-shaped checkout whose apps are tiny node
// servers (no Next.js), for what does not need a real dev server.
func lightCheckout(t *testing.T) *devCheckout {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("needs node on PATH")
	}
	redis := testsupport.Tool(t, "redis-server")
	mongod := testsupport.MongodPath(t)
	root := t.TempDir()
	c := &devCheckout{main: filepath.Join(root, "repo"), home: filepath.Join(root, "home")}
	server := `import http from "node:http";
const i = process.argv.indexOf("--port");
const port = Number(i >= 0 ? process.argv[i + 1] : process.env.PORT);
http.createServer((req, res) => { res.writeHead(200, {"content-type": "application/json"}); res.end(JSON.stringify({ok: true, path: req.url})); })
  .listen(port, "127.0.0.1", () => console.log("listening on " + port));
process.on("SIGTERM", () => process.exit(0));
`
	for rel, content := range map[string]string{
		"apps/web/package.json":          `{"scripts":{"dev":"node server.mjs"}}`,
		"apps/web/server.mjs":            server,
		"apps/worker/package.json":       `{"scripts":{"dev":"node --watch src/index.mjs"}}`,
		"apps/worker/src/index.mjs":      server,
		"apps/web/node_modules/.keep":    "",
		"apps/worker/node_modules/.keep": "",
	} {
		p := filepath.Join(c.main, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := exec.LookPath("git"); err == nil {
		sh(t, c.main, "git", "init", "-q")
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECOND_") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "SECOND_MONGOD="+mongod, "SECOND_REDIS_SERVER="+redis)
	return c
}

func listening(port int) bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func stopDev(t *testing.T, r *running) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(90 * time.Second):
		t.Fatal("second dev did not stop on SIGTERM")
	}
}

func TestDevKeepInfraAndDown(t *testing.T) {
	c := lightCheckout(t)
	c.env = append(c.env, "SECOND_DEV_KEEP_INFRA=1", "SECOND_DEV_PORTLESS=0")
	info := func() devstack.Info {
		i, err := devstack.ReadInfo(filepath.Join(c.main, ".second-dev.txt"))
		if err != nil {
			t.Fatal(err)
		}
		return i
	}

	a, _ := c.dev(t, c.main)
	waitReady(t, a, 3*time.Minute)
	first := info()
	if first.URL != "http://localhost:"+strconv.Itoa(first.WebPort) {
		t.Errorf("SECOND_DEV_PORTLESS=0: url %s", first.URL)
	}
	if _, err := exec.LookPath("git"); err == nil && !strings.Contains(a.out.String(), "add these lines to "+filepath.Join(c.main, ".gitignore")) {
		t.Errorf("no .gitignore advice outside git-ignored files:\n%s", a.out)
	}
	stopDev(t, a)
	if !listening(first.MongoPort) || !listening(first.RedisPort) {
		t.Fatalf("SECOND_DEV_KEEP_INFRA=1: mongo (%d) or redis (%d) stopped with second dev", first.MongoPort, first.RedisPort)
	}
	if listening(first.WebPort) || listening(first.WorkerPort) {
		t.Error("the apps outlived second dev")
	}

	b, _ := c.dev(t, c.main)
	waitReady(t, b, 3*time.Minute)
	second := info()
	if !strings.Contains(b.out.String(), "using the MongoDB and Redis kept running") || second.MongoPort != first.MongoPort || second.RedisPort != first.RedisPort {
		t.Errorf("the next second dev did not reuse the kept infrastructure (%+v then %+v):\n%s", first, second, b.out)
	}
	stopDev(t, b)

	down := exec.Command(builtSecond, "dev", "down", "--volumes", "--yes", "--home", c.home)
	down.Dir, down.Env = c.main, c.env
	out, err := down.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stopped the kept MongoDB and Redis") {
		t.Fatalf("dev down: %v\n%s", err, out)
	}
	if listening(first.MongoPort) || listening(first.RedisPort) {
		t.Error("dev down left mongo or redis running")
	}
	if _, err := os.Stat(filepath.Join(c.main, ".second-dev")); !os.IsNotExist(err) {
		t.Errorf(".second-dev/ survived dev down --volumes: %v", err)
	}

	// Without --yes and without a terminal, --volumes refuses.
	down = exec.Command(builtSecond, "dev", "down", "--volumes", "--home", c.home)
	down.Dir, down.Env, down.Stdin = c.main, c.env, strings.NewReader("y\n")
	if out, err := down.CombinedOutput(); err == nil || !strings.Contains(string(out), "needs confirmation") {
		t.Errorf("dev down --volumes without a terminal: %v\n%s", err, out)
	}
}
