package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport"
)

func TestHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/health":
			w.WriteHeader(200)
		case "/warming":
			if calls.Add(1) < 3 {
				w.WriteHeader(503)
				return
			}
			w.WriteHeader(200)
		case "/redirect":
			http.Redirect(w, r, "/api/health", http.StatusFound)
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	closed := testsupport.FreePort(t)
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"200 is ready", srv.URL + "/api/health", ""},
		{"500 is not", srv.URL + "/boom", "500"},
		{"a redirect is not 200", srv.URL + "/redirect", "302"},
		{"nothing listening", fmt.Sprintf("http://127.0.0.1:%d/health", closed), "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := HTTP{URL: tc.url}.Check(context.Background())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Check = %v, want %q", err, tc.wantErr)
			}
		})
	}
	// Wait polls through 503s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Wait(ctx, HTTP{URL: srv.URL + "/warming"}, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Errorf("polled %d times, want 3", calls.Load())
	}
}

func TestWait(t *testing.T) {
	perm := errors.New("wrong password")
	n := 0
	err := Wait(context.Background(), Func(func(context.Context) error { n++; return Permanent(perm) }), time.Millisecond)
	if !errors.Is(err, perm) || n != 1 {
		t.Errorf("permanent: err %v after %d checks", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = Wait(ctx, Func(func(context.Context) error { return errors.New("port 3030 not open") }), time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "port 3030 not open") || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("timeout error should carry the last reason: %v", err)
	}
}

// fakeRedis answers each PING with the next scripted reply: a test double
// for the -LOADING phase, which a real redis-server shows only briefly.
func fakeRedis(t *testing.T, replies ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for i := 0; ; i++ {
			c, err := l.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			// *1\r\n$4\r\nPING\r\n
			for range 3 {
				br.ReadString('\n')
			}
			r := replies[min(i, len(replies)-1)]
			c.Write([]byte(r + "\r\n"))
			c.Close()
		}
	}()
	return l.Addr().String()
}

func TestRedisReplies(t *testing.T) {
	tests := []struct {
		name      string
		replies   []string
		wantErr   string
		permanent bool
	}{
		{"pong", []string{"+PONG"}, "", false},
		{"loading means wait", []string{"-LOADING Redis is loading the dataset in memory"}, "still loading", false},
		{"noauth is permanent", []string{"-NOAUTH Authentication required."}, "needs a password", true},
		{"anything else", []string{"-ERR unknown"}, `answered "-ERR unknown"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Redis{Addr: fakeRedis(t, tc.replies...)}.Check(context.Background())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Check = %v, want %q", err, tc.wantErr)
			}
			if IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v", IsPermanent(err))
			}
		})
	}
	addr := fakeRedis(t, "-LOADING", "-LOADING", "+PONG")
	if err := Wait(context.Background(), Redis{Addr: addr}, time.Millisecond); err != nil {
		t.Errorf("Wait through LOADING: %v", err)
	}
}

// startRedis runs a real redis-server on a free loopback port.
func startRedis(t *testing.T, extra ...string) string {
	t.Helper()
	bin := testsupport.Tool(t, "redis-server")
	port := testsupport.FreePort(t)
	args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no"}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return fmt.Sprintf("127.0.0.1:%d", port)
}

func TestRedisReal(t *testing.T) {
	addr := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Wait(ctx, Redis{Addr: addr}, 0); err != nil {
		t.Fatal(err)
	}

	const secret = "s3cret-pass"
	addr = startRedis(t, "--requirepass", secret)
	if err := Wait(ctx, Redis{Addr: addr, Password: secret}, 0); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	err := Wait(ctx, Redis{Addr: addr, Password: "wrong"}, 0)
	if !IsPermanent(err) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password should fail permanently without echoing it: %v", err)
	}
	if err := (Redis{Addr: addr}).Check(ctx); !IsPermanent(err) {
		t.Errorf("no password: %v", err)
	}
}
