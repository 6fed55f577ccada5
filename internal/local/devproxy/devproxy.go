// Package devproxy is the reverse proxy `second dev` puts in front of every
// worktree's web server: one loopback port shared by all dev stacks on the
// machine, routing http://<dev-id>.second.localhost:<port> by its Host
// header to that stack's web port, WebSockets (Next.js HMR) included.
// Browsers resolve *.localhost to loopback, so no hosts file or sudo is needed.
package devproxy

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Suffix is the domain every dev stack's host name ends with.
const Suffix = ".second.localhost"

// DefaultPort is the proxy's port when SECOND_DEV_PORTLESS_PROXY_PORT is unset:
// unprivileged, so no sudo.
const DefaultPort = 1355

// identityHost is answered by the proxy itself, so a `second dev` can tell
// a port held by another second dev proxy from one held by something else.
const identityHost = "_proxy" + Suffix

// identityBody is what the proxy answers on identityHost.
const identityBody = "second dev proxy\n"

// URL is the stable address of the dev stack id behind the proxy on port.
func URL(id string, port int) string {
	return "http://" + id + Suffix + ":" + strconv.Itoa(port)
}

// ID returns the dev id a Host header names, or "" when it names none.
func ID(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	id, ok := strings.CutSuffix(host, Suffix)
	if !ok || id == "" || strings.Contains(id, ".") {
		return ""
	}
	return id
}

// Backend is where one dev stack's web server listens.
type Backend struct {
	ID   string
	Port int // on 127.0.0.1
}

// Table answers which web port serves a dev id. Lookup is called on every
// request and must be fast; List feeds the page shown for unknown hosts.
type Table interface {
	Lookup(id string) (port int, ok bool)
	List() []Backend
}

type portKey struct{}

// Handler returns the proxy's http.Handler over table.
func Handler(table Table) http.Handler {
	tr := &http.Transport{
		// Never through the user's HTTP_PROXY: the backends are on loopback.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			port := pr.In.Context().Value(portKey{}).(int)
			pr.SetURL(&url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)})
			// The app sees the name the browser used (redirects, allowed
			// dev origins); X-Forwarded-* say how it was reached.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
		// Stream as the app writes: React server components and dev
		// event streams must not wait in a buffer.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			port := r.Context().Value(portKey{}).(int)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "second dev: the web server of %s (127.0.0.1:%d) is not answering: %v\nIt may still be starting; see the output of `second dev` in that worktree.\n",
				ID(r.Host), port, err)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(hostOnly(r.Host), identityHost) {
			io.WriteString(w, identityBody)
			return
		}
		id := ID(r.Host)
		port, ok := 0, false
		if id != "" {
			port, ok = table.Lookup(id)
		}
		if !ok {
			notFound(w, r, id, table.List())
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), portKey{}, port)))
	})
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// notFound lists the running dev stacks, so a mistyped or stopped one is
// easy to tell apart.
func notFound(w http.ResponseWriter, r *http.Request, id string, all []Backend) {
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	what := "Host " + r.Host + " is not a dev stack name (<dev-id>" + Suffix + ")"
	if id != "" {
		what = "No dev stack named " + id + " is running"
	}
	fmt.Fprintf(w, "<!doctype html><title>second dev</title><p>%s.</p>", html.EscapeString(what))
	if len(all) == 0 {
		io.WriteString(w, "<p>No dev stacks are running: start one with <code>second dev</code> in a worktree.</p>")
		return
	}
	_, port, _ := net.SplitHostPort(r.Host)
	io.WriteString(w, "<p>Running:</p><ul>")
	for _, b := range all {
		u := "http://" + b.ID + Suffix
		if port != "" {
			u += ":" + port
		}
		fmt.Fprintf(w, `<li><a href="%s">%s</a></li>`, html.EscapeString(u), html.EscapeString(u))
	}
	io.WriteString(w, "</ul>")
}

// ErrForeign means the proxy port is held by a program that is not a
// second dev proxy.
var ErrForeign = errors.New("held by a program that is not a second dev proxy")

// Keep makes sure a proxy serves on 127.0.0.1:port while ctx lives: it
// serves itself when the port is free, and otherwise leaves it to the
// second dev that holds it, taking over within a second when that one
// exits. So the first `second dev` starts the proxy and the last one out
// stops it, with no daemon to outlive them. onState reports changes:
// serving (err nil, serving true), left to another (nil, false), or a
// foreign holder (ErrForeign). Keep returns when ctx ends.
func Keep(ctx context.Context, port int, h http.Handler, onState func(serving bool, err error)) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	last := ""
	report := func(serving bool, err error) {
		key := fmt.Sprint(serving, err)
		if key != last && onState != nil {
			onState(serving, err)
		}
		last = key
	}
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			report(true, nil)
			done := make(chan struct{})
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
				close(done)
			}()
			_ = srv.Serve(l)
			<-done
			return
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && IsProxy(ctx, port):
			report(false, nil)
		case errors.Is(err, syscall.EADDRINUSE):
			report(false, fmt.Errorf("port %d on 127.0.0.1 is %w", port, ErrForeign))
		default:
			report(false, fmt.Errorf("listen on %s: %w", addr, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// IsProxy reports whether a second dev proxy answers on 127.0.0.1:port.
func IsProxy(ctx context.Context, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/", nil)
	if err != nil {
		return false
	}
	req.Host = identityHost
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && string(b) == identityBody
}
