package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/control"
	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/local/updatecheck"
)

type fakeRuntime struct {
	mu      sync.Mutex
	stopped chan struct{}
	once    sync.Once
}

func (f *fakeRuntime) Snapshot() control.Snapshot {
	started := time.Now().Add(-time.Minute)
	return control.Snapshot{Phase: "running", URL: "http://localhost:3030", Services: []runstatus.Service{
		{Name: "redis", State: "ready", PID: 4242, Port: 6380, Restarts: 1, StartedAt: &started},
		{Name: "web", State: "starting", PID: 4243, Port: 3030},
	}}
}

func (f *fakeRuntime) Stop(ctx context.Context) error {
	f.once.Do(func() { close(f.stopped) })
	return nil
}

type fakeRelease struct{ st updatecheck.Status }

func (f fakeRelease) Status(context.Context) updatecheck.Status { return f.st }

type fakeUpdater struct {
	mu    sync.Mutex
	state update.State
}

func (f *fakeUpdater) Install(v string) (update.State, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.Running() {
		return f.state, false, nil
	}
	if v == "not-semver" {
		return update.State{}, false, update.ErrBadVersion
	}
	f.state = update.State{Phase: update.PhaseStopping, From: "1.0.0", To: v}
	return f.state, true, nil
}

func (f *fakeUpdater) State() update.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

type harness struct {
	srv    *control.Server
	rt     *fakeRuntime
	layout home.Layout
	token  string
}

func start(t *testing.T) *harness {
	t.Helper()
	l := home.Layout{Root: t.TempDir()}
	rt := &fakeRuntime{stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := control.Start(ctx, control.Options{
		Layout: l, Runtime: rt, Version: "1.0.0", PackageName: "@second-inc/cli",
		Release: fakeRelease{updatecheck.Status{Package: "@second-inc/cli", Current: "1.0.0", Channel: "latest", Newest: "1.1.0", UpdateAvailable: true}},
		Updater: &fakeUpdater{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	b, err := os.ReadFile(l.Secret(home.SecretControlToken))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{srv: srv, rt: rt, layout: l, token: strings.TrimSpace(string(b))}
}

type req struct {
	method, path, host, auth, ctype, body string
	headers                               map[string]string
	chunked                               bool
}

// send writes the request by hand, so every header (an empty Host
// included) is exactly what the test says.
func (h *harness) send(t *testing.T, r req) (int, http.Header, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(serverPort(t, h.srv)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", r.method, r.path, r.host)
	if r.auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", r.auth)
	}
	if r.ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ctype)
	}
	for k, v := range r.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if r.chunked {
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(r.body), r.body)
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	}
	io.WriteString(c, b.String())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestSecurityRefusals(t *testing.T) {
	h := start(t)
	port := strconv.Itoa(serverPort(t, h.srv))
	good := "127.0.0.1:" + port
	bearer := "Bearer " + h.token
	wrongSameLen := "Bearer " + strings.Repeat("0", len(h.token))
	big := `{"version":"` + strings.Repeat("x", 70<<10) + `"}`

	tests := []struct {
		name string
		r    req
		want int
		code string // the answer's {"error": code}: 403 alone does not say which check refused
	}{
		{"no token: status", req{method: "GET", path: "/status", host: good}, 401, "unauthorized"},
		{"no token: release status", req{method: "GET", path: "/release/status", host: good}, 401, "unauthorized"},
		{"no token: stop", req{method: "POST", path: "/stop", host: good}, 401, "unauthorized"},
		{"no token: install", req{method: "POST", path: "/update/install", host: good}, 401, "unauthorized"},
		{"wrong token", req{method: "GET", path: "/status", host: good, auth: wrongSameLen}, 401, "unauthorized"},
		{"wrong-length token", req{method: "GET", path: "/status", host: good, auth: "Bearer abc"}, 401, "unauthorized"},
		{"overlong token", req{method: "GET", path: "/status", host: good, auth: bearer + "00"}, 401, "unauthorized"},
		{"token with basic scheme", req{method: "GET", path: "/status", host: good, auth: "Basic " + h.token}, 401, "unauthorized"},
		{"empty bearer", req{method: "GET", path: "/status", host: good, auth: "Bearer "}, 401, "unauthorized"},
		{"foreign host", req{method: "GET", path: "/status", host: "evil.example:" + port, auth: bearer}, 403, "forbidden_host"},
		{"foreign host on health", req{method: "GET", path: "/health", host: "evil.example:" + port}, 403, "forbidden_host"},
		{"rebinding name", req{method: "GET", path: "/health", host: "127.0.0.1.nip.io:" + port}, 403, "forbidden_host"},
		{"loopback without port", req{method: "GET", path: "/health", host: "127.0.0.1"}, 403, "forbidden_host"},
		{"other port", req{method: "GET", path: "/health", host: "localhost:1"}, 403, "forbidden_host"},
		{"empty host", req{method: "GET", path: "/health", host: ""}, 403, "forbidden_host"},
		{"empty host with token", req{method: "POST", path: "/stop", host: "", auth: bearer}, 403, "forbidden_host"},
		{"cross-site POST", req{method: "POST", path: "/stop", host: good, auth: bearer, headers: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}}, 403, "cross_origin"},
		{"same-site POST from another port", req{method: "POST", path: "/stop", host: good, auth: bearer, headers: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3030"}}, 403, "cross_origin"},
		{"origin mismatch without fetch metadata", req{method: "POST", path: "/update/install", host: good, auth: bearer, ctype: "application/json", body: "{}", headers: map[string]string{"Origin": "http://evil.example"}}, 403, "cross_origin"},
		{"oversized body", req{method: "POST", path: "/update/install", host: good, auth: bearer, ctype: "application/json", body: big}, 413, "body_too_large"},
		{"oversized chunked body", req{method: "POST", path: "/update/install", host: good, auth: bearer, ctype: "application/json", body: big, chunked: true}, 413, "body_too_large"},
		{"text/plain body", req{method: "POST", path: "/update/install", host: good, auth: bearer, ctype: "text/plain", body: `{"version":"1.1.0"}`}, 415, "json_only"},
		{"form body", req{method: "POST", path: "/stop", host: good, auth: bearer, ctype: "application/x-www-form-urlencoded", body: "a=b"}, 415, "json_only"},
		{"body without content type", req{method: "POST", path: "/stop", host: good, auth: bearer, body: "{}"}, 415, "json_only"},
		{"invalid json", req{method: "POST", path: "/update/install", host: good, auth: bearer, ctype: "application/json", body: "{"}, 400, "invalid_json"},
		{"unknown route needs token too", req{method: "GET", path: "/debug/pprof/", host: good}, 401, "unauthorized"},
		{"wrong method", req{method: "GET", path: "/stop", host: good, auth: bearer}, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := h.send(t, tc.r)
			if code != tc.want {
				t.Errorf("got %d %s, want %d", code, body, tc.want)
			}
			var answer struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Error != tc.code {
				t.Errorf("answer %q, want {\"error\":%q}", body, tc.code)
			}
			for k := range hdr {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("CORS header %s set", k)
				}
			}
			if strings.Contains(body, h.token) {
				t.Error("answer contains the token")
			}
		})
	}
	select {
	case <-h.rt.stopped:
		t.Fatal("a refused request stopped the runtime")
	default:
	}
}

func TestAcceptedRequests(t *testing.T) {
	h := start(t)
	port := strconv.Itoa(serverPort(t, h.srv))
	bearer := "Bearer " + h.token

	checkHealthOnEveryLoopbackHost(t, h, port)
	// Preflight: answered without any CORS permission.
	code, hdr, _ := h.send(t, req{method: "OPTIONS", path: "/stop", host: "127.0.0.1:" + port, headers: map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}})
	if code/100 == 2 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight answered %d with %v", code, hdr)
	}

	checkStatus(t, h, port, bearer)
	checkInstall(t, h, port, bearer)

	code, _, body := h.send(t, req{method: "POST", path: "/stop", host: "127.0.0.1:" + port, auth: bearer})
	if code != 202 {
		t.Fatalf("stop: %d %s", code, body)
	}
	select {
	case <-h.rt.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("POST /stop did not stop the runtime")
	}
}

// checkHealthOnEveryLoopbackHost checks /health answers under each loopback
// Host name and reveals only names and states.
func checkHealthOnEveryLoopbackHost(t *testing.T, h *harness, port string) {
	t.Helper()
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port} {
		code, _, body := h.send(t, req{method: "GET", path: "/health", host: host})
		if code != 200 {
			t.Fatalf("health via Host %s: %d %s", host, code, body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got["ok"] != true || got["version"] != "1.0.0" {
			t.Errorf("health = %s", body)
		}
		// Nothing but names and states: no pids, ports, paths.
		for _, leak := range []string{"pid", "4242", "6380", "port", h.layout.Root} {
			if strings.Contains(body, leak) {
				t.Errorf("health reveals %q: %s", leak, body)
			}
		}
	}
}

// checkStatus checks /status and /release/status with the token.
func checkStatus(t *testing.T, h *harness, port, bearer string) {
	t.Helper()
	code, _, body := h.send(t, req{method: "GET", path: "/status", host: "localhost:" + port, auth: bearer})
	var st runstatus.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("status: %d %s %v", code, body, err)
	}
	if !st.Running || st.Phase != "running" || st.Home != h.layout.Root || st.URL != "http://localhost:3030" || st.ControlURL != h.srv.URL() || st.PID != os.Getpid() {
		t.Errorf("status = %+v", st)
	}
	if len(st.Services) != 2 || st.Services[0].PID != 4242 || st.Services[0].Port != 6380 || st.Services[0].Restarts != 1 || st.Services[0].UptimeSeconds < 59 {
		t.Errorf("status services = %+v", st.Services)
	}

	code, _, body = h.send(t, req{method: "GET", path: "/release/status", host: "127.0.0.1:" + port, auth: bearer})
	if code != 200 || !strings.Contains(body, `"newest":"1.1.0"`) || strings.Contains(body, `"update"`) {
		t.Errorf("release status: %d %s", code, body)
	}
}

// checkInstall starts an install from a same-origin browser POST, checks a
// second one is refused naming the running one, and that release status
// shows it.
func checkInstall(t *testing.T, h *harness, port, bearer string) {
	t.Helper()
	// Same-origin browser POSTs pass; JSON with charset is JSON.
	sameOrigin := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:" + port}
	code, _, body := h.send(t, req{method: "POST", path: "/update/install", host: "127.0.0.1:" + port, auth: bearer, ctype: "application/json; charset=utf-8", body: `{"version":"1.1.0"}`, headers: sameOrigin})
	if code != 202 || !strings.Contains(body, `"to":"1.1.0"`) {
		t.Fatalf("install: %d %s", code, body)
	}
	code, _, body = h.send(t, req{method: "POST", path: "/update/install", host: "127.0.0.1:" + port, auth: bearer})
	if code != 409 || !strings.Contains(body, `"install_running"`) || !strings.Contains(body, `"to":"1.1.0"`) {
		t.Errorf("second install: %d %s, want 409 naming the running one", code, body)
	}
	code, _, body = h.send(t, req{method: "GET", path: "/release/status", host: "127.0.0.1:" + port, auth: bearer})
	if code != 200 || !strings.Contains(body, `"update":{"phase":"stopping"`) {
		t.Errorf("release status during install: %d %s", code, body)
	}
}

func TestInstallValidation(t *testing.T) {
	h := start(t)
	host := "127.0.0.1:" + strconv.Itoa(serverPort(t, h.srv))
	code, _, body := h.send(t, req{method: "POST", path: "/update/install", host: host, auth: "Bearer " + h.token, ctype: "application/json", body: `{"version":"not-semver"}`})
	if code != 400 || !strings.Contains(body, "invalid_version") {
		t.Errorf("bad version: %d %s", code, body)
	}
	code, _, body = h.send(t, req{method: "POST", path: "/update/install", host: host, auth: "Bearer " + h.token, ctype: "application/json", body: `{"version":"1.2.3","extra":1}`})
	if code != 400 {
		t.Errorf("unknown field: %d %s", code, body)
	}
}

func TestControlFileAndToken(t *testing.T) {
	h := start(t)
	path := h.layout.ControlFile()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v, want 0644", path, st.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), h.token) {
		t.Fatal("local-control.json contains the token")
	}
	var info control.Info
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	want := control.Info{URL: h.srv.URL(), Port: serverPort(t, h.srv), PID: os.Getpid(), Version: "1.0.0", PackageName: "@second-inc/cli", TokenPath: h.layout.Secret(home.SecretControlToken)}
	if info != want {
		t.Errorf("local-control.json = %+v, want %+v", info, want)
	}
	if len(h.token) != 64 {
		t.Errorf("token has %d hex chars, want 64 (32 bytes)", len(h.token))
	}
	for p, mode := range map[string]os.FileMode{h.layout.SecretsDir(): 0o700, info.TokenPath: 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", p, st.Mode().Perm(), err, mode)
		}
	}

	// The client reads the file and the token and gets through.
	c, err := client.Open(h.layout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if hl, err := c.Health(ctx); err != nil || !hl.OK || len(hl.Services) != 2 {
		t.Errorf("client health = %+v, %v", hl, err)
	}
	if s, err := c.Status(ctx); err != nil || s.Version != "1.0.0" {
		t.Errorf("client status = %+v, %v", s, err)
	}

	// A second server in the same home reuses the token; closing removes the file.
	h.srv.Close(ctx)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("local-control.json still there after Close: %v", err)
	}
	srv2, err := control.Start(ctx, control.Options{Layout: h.layout, Runtime: h.rt, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close(ctx)
	b, _ := os.ReadFile(h.layout.Secret(home.SecretControlToken))
	if strings.TrimSpace(string(b)) != h.token {
		t.Error("the token changed between starts")
	}
	if _, err := c.Health(ctx); err == nil {
		t.Error("old client still reaches a closed server")
	}
}

// The server listens on loopback only: every other address of the machine refuses.
func TestNotReachableOffLoopback(t *testing.T) {
	h := start(t)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var tried int
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			tried++
			addr := net.JoinHostPort(ipn.IP.String(), strconv.Itoa(serverPort(t, h.srv)))
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err == nil {
				c.Close()
				t.Errorf("control server reachable on %s (%s)", addr, ifc.Name)
			}
		}
	}
	if tried == 0 {
		t.Skip("this machine has no non-loopback address to try")
	}
	t.Logf("refused on %d non-loopback addresses", tried)
}

// serverPort is the port in the server's URL.
func serverPort(t testing.TB, s *control.Server) int {
	t.Helper()
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("server URL %s has no port", s.URL())
	}
	return p
}
