package faultproxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport/faultproxy"
)

func TestRules(t *testing.T) {
	var served atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok "+r.Host)
	}))
	defer backend.Close()
	p, err := faultproxy.Start(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var hooked atomic.Bool
	p.Add(faultproxy.Rule{Method: "PUT", Contains: "/reset", Action: faultproxy.Reset})
	p.Add(faultproxy.Rule{Contains: "/busy", Action: faultproxy.Status, Status: 503, Times: 1})
	p.Add(faultproxy.Rule{Contains: "/slow", Action: faultproxy.Stall, Delay: time.Second})
	p.Add(faultproxy.Rule{Contains: "/hook", Action: faultproxy.Hook, Hook: func(*http.Request) { hooked.Store(true) }})

	client := &http.Client{Timeout: 300 * time.Millisecond}
	do := func(method, path string) (int, string, error) {
		req, _ := http.NewRequest(method, p.URL+strings.TrimPrefix(path, "/"), strings.NewReader(strings.Repeat("x", 64<<10)))
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	tests := []struct {
		name, method, path string
		wantCode           int
		wantErr            bool
		wantServed         int32 // backend requests after this call
	}{
		{"pass through", "GET", "/plain", 200, false, 1},
		{"reset on upload", "PUT", "/reset", 0, true, 1},
		{"reset only matches PUT", "GET", "/reset", 200, false, 2},
		{"503 once", "PUT", "/busy", 503, false, 2},
		{"then through", "PUT", "/busy", 200, false, 3},
		{"stall: served, client times out", "PUT", "/slow", 0, true, 4},
		{"hook drops", "PUT", "/hook", 0, true, 4},
	}
	for _, tc := range tests {
		code, body, err := do(tc.method, tc.path)
		if (err != nil) != tc.wantErr || code != tc.wantCode {
			t.Errorf("%s: code %d err %v, want code %d err %v", tc.name, code, err, tc.wantCode, tc.wantErr)
		}
		if code == 200 && !strings.Contains(body, "ok 127.0.0.1") {
			t.Errorf("%s: body %q", tc.name, body)
		}
		// The stalled request reaches the backend before the client gives up.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for served.Load() < tc.wantServed && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if got := served.Load(); got != tc.wantServed {
			t.Errorf("%s: backend served %d, want %d", tc.name, got, tc.wantServed)
		}
	}
	if !hooked.Load() {
		t.Error("hook not called")
	}
	if got := len(p.Hits()); got != 4 {
		t.Errorf("hits %d, want 4: %v", got, p.Hits())
	}
}

// TestThrottle: a throttled upload arrives whole, and no faster than the rate.
func TestThrottle(t *testing.T) {
	var got atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	}))
	defer backend.Close()
	p, err := faultproxy.Start(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Add(faultproxy.Rule{Method: "PUT", Action: faultproxy.Throttle, Rate: 1 << 20})
	const size = 512 << 10
	req, _ := http.NewRequest("PUT", p.URL+"x", strings.NewReader(strings.Repeat("x", size)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("512 KiB at 1 MiB/s took %s, want about 0.5 s", took)
	}
	if got.Load() != size {
		t.Errorf("backend got %d bytes, want %d", got.Load(), size)
	}
}
