package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }

// allowedHost accepts only the loopback names of our own port: a page on
// evil.example that rebinds its name to 127.0.0.1 still sends its own Host.
func (s *Server) allowedHost(host string) bool {
	p := ":" + strconv.Itoa(s.port)
	return host == "127.0.0.1"+p || host == "localhost"+p || host == "[::1]"+p
}

// guard wraps every route: Host check, bearer token (unless public), and for
// POSTs cross-origin protection, content type and body size. It never sets
// CORS headers, so browsers keep other origins from reading answers.
func (s *Server) guard(public bool, h http.HandlerFunc) http.Handler {
	var inner http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !public && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="second"`)
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		if r.Method == http.MethodPost {
			if r.ContentLength > s.opts.MaxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "body_too_large")
				return
			}
			if !jsonOrEmpty(r) {
				writeError(w, http.StatusUnsupportedMediaType, "json_only")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		h(w, r)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross_origin")
	}))
	inner = cop.Handler(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !s.allowedHost(r.Host) {
			writeError(w, http.StatusForbidden, "forbidden_host")
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// authorized compares SHA-256 digests in constant time, so neither the
// token's content nor its length leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := hashToken(strings.TrimSpace(h[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
}

// jsonOrEmpty: a POST carries application/json or nothing at all. HTML forms
// can only send urlencoded, multipart or text/plain bodies.
func jsonOrEmpty(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// readJSON decodes an optional JSON body into v; empty is fine.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := jsonDecoder(r)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large")
			return false
		case errors.Is(err, io.EOF):
			return true
		}
		writeError(w, http.StatusBadRequest, "invalid_json")
		return false
	}
	return true
}
