package devproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkDirect and BenchmarkProxied fetch the same small page from a
// loopback server, directly and through the proxy (both with keep-alive);
// the difference per op is the proxy's added latency.
func BenchmarkDirect(b *testing.B) {
	s := benchBackend(b)
	benchGet(b, s.URL, "")
}

func BenchmarkProxied(b *testing.B) {
	s := benchBackend(b)
	p := httptest.NewServer(Handler(mapTable{"feat": portOf(b, s.URL)}))
	b.Cleanup(p.Close)
	benchGet(b, p.URL, "feat.second.localhost:1355")
}

func benchBackend(b *testing.B) *httptest.Server {
	page := make([]byte, 4096)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page) }))
	b.Cleanup(s.Close)
	return s
}

func benchGet(b *testing.B, url, host string) {
	c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	req, _ := http.NewRequest(http.MethodGet, url+"/", nil)
	if host != "" {
		req.Host = host
	}
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
