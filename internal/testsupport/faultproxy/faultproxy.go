// Package faultproxy is a loopback HTTP reverse proxy for tests that breaks
// chosen requests on the way to a real server: it resets the connection
// part-way through an upload, answers with an error status, forwards and then
// stalls the answer past the client's timeout, calls a hook (to kill the
// client, say) before dropping the request, or forwards an upload slowly.
package faultproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Action is what a matching rule does to a request.
type Action int

const (
	// Reset reads part of the request body (Rule.ResetAt of it), then resets
	// the TCP connection while the client is still sending.
	Reset Action = iota + 1
	// Status answers with Rule.Status without forwarding.
	Status
	// Stall forwards the request, lets the server finish it, then holds the
	// answer for Rule.Delay before writing it: the client times out although
	// the server did the work.
	Stall
	// Hook calls Rule.Hook, then resets the connection without forwarding.
	Hook
	// Throttle forwards the request, reading its body at Rule.Rate bytes a
	// second, so the client's upload takes a while.
	Throttle
)

// Rule matches requests by method, path substring and path suffix (all optional).
type Rule struct {
	Method   string // "" matches any
	Contains string // substring of the unescaped or raw path; "" matches any
	Suffix   string // the unescaped path ends with it; "" matches any
	Action   Action
	Status   int           // for Status
	Delay    time.Duration // for Stall
	// ResetAt is the fraction of the request body (by Content-Length) Reset
	// reads before the reset; 0, or a body of unknown length: 4 KiB.
	ResetAt float64
	Hook    func(*http.Request)
	Rate    int64 // bytes per second, for Throttle
	// Times limits how often the rule fires; 0 means every time.
	Times int

	fired int
	hit   int // index in Proxy.hits of the request being served
}

// Hit records one request that met a rule.
type Hit struct {
	Method, Path string
	Action       Action
	// For Reset: the body's Content-Length (-1 unknown) and how many bytes
	// of it the proxy had read when it reset the connection.
	BodySize, BodyRead int64
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's base URL with a trailing slash.
	URL string

	target *url.URL
	rp     *httputil.ReverseProxy
	srv    *http.Server
	ln     net.Listener

	mu    sync.Mutex
	rules []*Rule
	hits  []Hit
	log   []string
}

// Start listens on a free loopback port and proxies to target.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{URL: "http://" + ln.Addr().String() + "/", target: u, ln: ln}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the server builds tarball URLs from Host: keep clients on the proxy
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy and drops open connections.
func (p *Proxy) Close() error { return p.srv.Close() }

// Add installs a rule; rules are tried in order.
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Hits lists the requests that met a rule.
func (p *Proxy) Hits() []Hit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Hit(nil), p.hits...)
}

// Requests lists "METHOD path" of every request seen.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

func (p *Proxy) match(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, r.Method+" "+r.URL.EscapedPath())
	for _, rule := range p.rules {
		if rule.Method != "" && rule.Method != r.Method {
			continue
		}
		if rule.Contains != "" && !strings.Contains(r.URL.Path, rule.Contains) && !strings.Contains(r.URL.EscapedPath(), rule.Contains) {
			continue
		}
		if rule.Suffix != "" && !strings.HasSuffix(r.URL.Path, rule.Suffix) {
			continue
		}
		if rule.Times > 0 && rule.fired >= rule.Times {
			continue
		}
		rule.fired++
		p.hits = append(p.hits, Hit{Method: r.Method, Path: r.URL.EscapedPath(), Action: rule.Action, BodySize: r.ContentLength})
		cp := *rule
		cp.hit = len(p.hits) - 1
		return &cp
	}
	return nil
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	rule := p.match(r)
	if rule == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	switch rule.Action {
	case Status:
		io.Copy(io.Discard, r.Body)
		http.Error(w, http.StatusText(rule.Status), rule.Status)
	case Reset:
		// Take part of the upload so the client is mid-send, then RST.
		n := int64(4096)
		if rule.ResetAt > 0 && r.ContentLength > 0 {
			n = int64(float64(r.ContentLength) * rule.ResetAt)
		}
		read, _ := io.CopyN(io.Discard, r.Body, n)
		p.mu.Lock()
		p.hits[rule.hit].BodyRead = read
		p.mu.Unlock()
		reset(w)
	case Hook:
		if rule.Hook != nil {
			rule.Hook(r)
		}
		reset(w)
	case Throttle:
		r.Body = &slowReader{r: r.Body, rate: rule.Rate, start: time.Now()}
		p.rp.ServeHTTP(w, r)
	case Stall:
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		p.rp.ServeHTTP(rec, r)
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body)
	}
}

// reset closes the client connection with SO_LINGER 0, which sends a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultproxy: response writer cannot hijack")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// recorder buffers a response so Stall can release it later.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }

// slowReader hands out its reader's bytes no faster than rate a second.
type slowReader struct {
	r     io.ReadCloser
	rate  int64
	start time.Time
	n     int64
}

func (s *slowReader) Read(b []byte) (int, error) {
	// At most a tenth of a second's worth per read, released on schedule.
	b = b[:min(int64(len(b)), max(s.rate/10, 1))]
	due := s.start.Add(time.Duration(float64(s.n) / float64(s.rate) * float64(time.Second)))
	time.Sleep(time.Until(due))
	n, err := s.r.Read(b)
	s.n += int64(n)
	return n, err
}

func (s *slowReader) Close() error { return s.r.Close() }
