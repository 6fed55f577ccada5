package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/testsupport"
)

// fixedRuntime reports the same snapshot every time, so two requests see
// the same state.
type fixedRuntime struct{ snap control.Snapshot }

func (f fixedRuntime) Snapshot() control.Snapshot     { return f.snap }
func (f fixedRuntime) Stop(ctx context.Context) error { return nil }

// GET /status and `second status --json` (run as a built binary; it asks
// the control server while one answers) encode the same type: for one state
// they print the same JSON, except controlUrl and packageName, which only
// the server's answer carries. Both bodies are pinned so the wire format
// cannot drift.
func TestStatusJSONSameForServerAndCLI(t *testing.T) {
	t.Setenv("SECOND_LOCAL_CLI_TOKEN", "")
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	svcStart := started.Add(time.Second)
	l := home.Layout{Root: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := control.Start(ctx, control.Options{
		Layout: l, Version: "1.0.0", PackageName: "@second-inc/cli",
		Runtime: fixedRuntime{control.Snapshot{Phase: "running", URL: "http://localhost:3030", StartedAt: started,
			Services: []runstatus.Service{
				{Name: "redis", State: "ready", PID: 4242, Port: 6380, Restarts: 1, StartedAt: &svcStart, UptimeSeconds: 59},
				{Name: "web", State: "starting"},
			}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	c, err := client.Open(l)
	if err != nil {
		t.Fatal(err)
	}
	body := getStatus(t, srv, c.Token)

	root, _ := json.Marshal(l.Root)
	want := func(packageName, controlURL string) string {
		return `{"running":true,"phase":"running","pid":` + strconv.Itoa(os.Getpid()) + `,"version":"1.0.0",` + packageName +
			`"url":"http://localhost:3030",` + controlURL + `"home":` + string(root) + `,"startedAt":"2026-01-02T03:04:05Z","services":[` +
			`{"name":"redis","state":"ready","pid":4242,"port":6380,"restarts":1,"startedAt":"2026-01-02T03:04:06Z","uptimeSeconds":59},` +
			`{"name":"web","state":"starting","restarts":0,"uptimeSeconds":0}]}`
	}
	wantServer := want(`"packageName":"@second-inc/cli",`, `"controlUrl":"`+srv.URL()+`",`)
	wantCLI := want("", "")
	if got := strings.TrimSpace(body); got != wantServer {
		t.Errorf("GET /status\n got %s\nwant %s", got, wantServer)
	}

	// The real CLI, against the real server.
	out := runSecond(t, "--home", l.Root, "status", "--json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		t.Fatalf("second status --json printed no JSON: %v\n%s", err, out)
	}
	if got := compact.String(); got != wantCLI {
		t.Errorf("status --json\n got %s\nwant %s", got, wantCLI)
	}
}

func getStatus(t *testing.T, srv *control.Server, token string) string {
	t.Helper()
	h := &harness{srv: srv}
	code, _, body := h.send(t, req{method: "GET", path: "/status", host: "127.0.0.1:" + strconv.Itoa(serverPort(t, srv)), auth: "Bearer " + token})
	if code != 200 {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	return body
}

// runSecond builds cmd/second once per test and runs it with args, outside
// any user's home and token settings.
func runSecond(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "second")
	build := exec.Command("go", "build", "-o", bin, "./cmd/second")
	build.Dir = testsupport.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/second: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECOND_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("second %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
