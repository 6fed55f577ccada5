package devproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/ports"
)

type mapTable map[string]int

func (m mapTable) Lookup(id string) (int, bool) { p, ok := m[id]; return p, ok }
func (m mapTable) List() []Backend {
	var out []Backend
	for id, p := range m {
		out = append(out, Backend{id, p})
	}
	return out
}

func portOf(t testing.TB, u string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// backend answers with its name and the Host and X-Forwarded-Host it saw.
func backend(t testing.TB, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s fwd=%s path=%s", name, r.Host, r.Header.Get("X-Forwarded-Host"), r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

func get(t testing.TB, proxy, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, proxy+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutesByHost(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	p := httptest.NewServer(Handler(mapTable{"feat-a": portOf(t, a.URL), "feat-b": portOf(t, b.URL)}))
	defer p.Close()
	tests := []struct {
		host      string
		status    int
		wantBody  []string
		wantNotIn string
	}{
		{"feat-a.second.localhost:1355", 200, []string{"a host=feat-a.second.localhost:1355", "fwd=feat-a.second.localhost:1355", "path=/x"}, ""},
		{"FEAT-B.second.localhost:1355", 200, []string{"b host=FEAT-B.second.localhost:1355"}, ""},
		{"gone.second.localhost:1355", 404, []string{"No dev stack named gone is running", "http://feat-a.second.localhost:1355", "http://feat-b.second.localhost:1355"}, ""},
		{"example.com", 404, []string{"is not a dev stack name"}, "a host="},
		{"x.feat-a.second.localhost", 404, []string{"not a dev stack name"}, "a host="},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			status, body := get(t, p.URL, tc.host, "/x")
			if status != tc.status {
				t.Fatalf("status %d, body %s", status, body)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q: %s", w, body)
				}
			}
			if tc.wantNotIn != "" && strings.Contains(body, tc.wantNotIn) {
				t.Errorf("body has %q: %s", tc.wantNotIn, body)
			}
		})
	}
}

func TestBackendDownIsBadGateway(t *testing.T) {
	free, err := ports.Any()
	if err != nil {
		t.Fatal(err)
	}
	p := httptest.NewServer(Handler(mapTable{"feat": free}))
	defer p.Close()
	status, body := get(t, p.URL, "feat.second.localhost", "/")
	if status != http.StatusBadGateway || !strings.Contains(body, "web server of feat (127.0.0.1:"+strconv.Itoa(free)+") is not answering") {
		t.Errorf("status %d body %s", status, body)
	}
}

// TestWebSocketUpgrade passes an Upgrade handshake through the proxy and
// then talks both ways on the raw connection, as HMR does.
func TestWebSocketUpgrade(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.URL.Path != "/_next/webpack-hmr" {
			http.Error(w, "want a websocket upgrade on /_next/webpack-hmr", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		// Echo lines upper-cased until the client closes.
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString(strings.ToUpper(line))
			rw.Flush()
		}
	}))
	defer ws.Close()
	p := httptest.NewServer(Handler(mapTable{"feat": portOf(t, ws.URL)}))
	defer p.Close()

	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /_next/webpack-hmr HTTP/1.1\r\nHost: feat.second.localhost:1355\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, msg := range []string{"hello\n", "second frame\n"} {
		fmt.Fprint(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != strings.ToUpper(msg) {
			t.Fatalf("echo %q: got %q, %v", msg, got, err)
		}
	}
}

func TestID(t *testing.T) {
	for host, want := range map[string]string{
		"feat.second.localhost:1355": "feat", "feat.second.localhost": "feat", "Feat.Second.Localhost.": "feat",
		"second.localhost": "", ".second.localhost": "", "a.b.second.localhost": "", "localhost:3000": "", "": "",
	} {
		if got := ID(host); got != want {
			t.Errorf("ID(%q) = %q, want %q", host, got, want)
		}
	}
}

// TestKeepHandsOver: the first keeper serves, the second waits; when the
// first stops, the second takes over, and a foreign holder is named.
func TestKeepHandsOver(t *testing.T) {
	a := backend(t, "a")
	port, err := ports.Any()
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(mapTable{"feat": portOf(t, a.URL)})
	type ev struct {
		who     string
		serving bool
		err     error
	}
	events := make(chan ev, 16)
	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); Keep(ctx1, port, h, func(s bool, err error) { events <- ev{"1", s, err} }) }()
	if e := <-events; e.who != "1" || !e.serving {
		t.Fatalf("first keeper: %+v", e)
	}
	go func() { defer wg.Done(); Keep(ctx2, port, h, func(s bool, err error) { events <- ev{"2", s, err} }) }()
	if e := <-events; e.who != "2" || e.serving || e.err != nil {
		t.Fatalf("second keeper should defer to the first: %+v", e)
	}
	stop1()
	select {
	case e := <-events:
		if e.who != "2" || !e.serving {
			t.Fatalf("second keeper should take over: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second keeper did not take over")
	}
	if status, body := get(t, "http://127.0.0.1:"+strconv.Itoa(port), "feat.second.localhost", "/"); status != 200 || !strings.HasPrefix(body, "a ") {
		t.Errorf("after hand-over: %d %s", status, body)
	}
	stop2()
	wg.Wait()

	// A foreign program on the port.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(l, http.NotFoundHandler())
	defer l.Close()
	ctx3, stop3 := context.WithCancel(context.Background())
	defer stop3()
	go Keep(ctx3, port, h, func(s bool, err error) { events <- ev{"3", s, err} })
	e := <-events
	if e.serving || !errors.Is(e.err, ErrForeign) || !strings.Contains(e.err.Error(), "port "+strconv.Itoa(port)) {
		t.Errorf("foreign holder: %+v", e)
	}
}
