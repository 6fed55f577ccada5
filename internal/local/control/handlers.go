package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/second-inc/second-release/internal/local/control/client"
	"github.com/second-inc/second-release/internal/local/runstatus"
	"github.com/second-inc/second-release/internal/local/update"
	"github.com/second-inc/second-release/internal/local/updatecheck"
)

func jsonDecoder(r *http.Request) *json.Decoder {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	return d
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", s.guard(true, s.health))
	mux.Handle("GET /status", s.guard(false, s.status))
	mux.Handle("GET /release/status", s.guard(false, s.releaseStatus))
	mux.Handle("POST /update/install", s.guard(false, s.installUpdate))
	mux.Handle("POST /stop", s.guard(false, s.stop))
	// Everything else, including unknown paths and wrong methods, goes through
	// the same guard so a foreign Host learns nothing about the routes.
	mux.Handle("/", s.guard(false, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found")
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, client.ErrorBody{Error: code})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	svcs := s.opts.Runtime.Snapshot().Services
	h := client.Health{OK: true, Version: s.opts.Version, Services: make([]client.HealthEntry, 0, len(svcs))}
	for _, sv := range svcs {
		h.Services = append(h.Services, client.HealthEntry{Name: sv.Name, State: sv.State})
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	snap := s.opts.Runtime.Snapshot()
	svcs := snap.Services
	for i := range svcs {
		if svcs[i].StartedAt != nil && svcs[i].PID != 0 && svcs[i].UptimeSeconds == 0 {
			svcs[i].UptimeSeconds = int64(now.Sub(*svcs[i].StartedAt).Seconds())
		}
	}
	if svcs == nil {
		svcs = []runstatus.Service{}
	}
	started := snap.StartedAt
	if started.IsZero() {
		started = s.started
	}
	phase := snap.Phase
	if phase == "" {
		phase = "running"
	}
	writeJSON(w, http.StatusOK, runstatus.Status{
		Running: true, Phase: phase, PID: os.Getpid(), Version: s.opts.Version, PackageName: s.opts.PackageName,
		URL: snap.URL, ControlURL: s.url, Home: s.opts.Layout.Root, StartedAt: &started, Services: svcs,
	})
}

// ReleaseStatus is the body of GET /release/status.
type ReleaseStatus struct {
	updatecheck.Status
	Update *update.State `json:"update,omitempty"`
}

func (s *Server) releaseStatus(w http.ResponseWriter, r *http.Request) {
	if s.opts.Release == nil {
		writeError(w, http.StatusServiceUnavailable, "release_check_unavailable")
		return
	}
	rs := ReleaseStatus{Status: s.opts.Release.Status(r.Context())}
	if s.opts.Updater != nil {
		if st := s.opts.Updater.State(); st.Phase != "" && st.Phase != update.PhaseIdle {
			rs.Update = &st
		}
	}
	writeJSON(w, http.StatusOK, rs)
}

// InstallRequest is the optional body of POST /update/install.
type InstallRequest struct {
	// Version to install; empty means the newest release status reports.
	Version string `json:"version,omitempty"`
}

func (s *Server) installUpdate(w http.ResponseWriter, r *http.Request) {
	if s.opts.Updater == nil {
		writeError(w, http.StatusServiceUnavailable, "update_unavailable")
		return
	}
	var req InstallRequest
	if !readJSON(w, r, &req) {
		return
	}
	version := req.Version
	if version == "" {
		if s.opts.Release == nil {
			writeError(w, http.StatusServiceUnavailable, "release_check_unavailable")
			return
		}
		rs := s.opts.Release.Status(r.Context())
		switch {
		case rs.Error != "":
			writeError(w, http.StatusBadGateway, rs.Error)
			return
		case !rs.UpdateAvailable:
			writeError(w, http.StatusConflict, "up_to_date")
			return
		}
		version = rs.Newest
	}
	st, started, err := s.opts.Updater.Install(version)
	switch {
	case errors.Is(err, update.ErrBadVersion):
		writeError(w, http.StatusBadRequest, "invalid_version")
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal")
	case !started:
		// One install at a time: report the one that runs.
		writeJSON(w, http.StatusConflict, struct {
			Error string `json:"error"`
			update.State
		}{"install_running", st})
	default:
		s.opts.Log.Info("update requested", "version", version)
		writeJSON(w, http.StatusAccepted, st)
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	var empty struct{}
	if !readJSON(w, r, &empty) {
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]bool{"stopping": true})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Stop after answering: stopping closes this server.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		if err := s.opts.Runtime.Stop(ctx); err != nil {
			s.opts.Log.Error("stop requested over the control server failed", "err", err)
		}
	}()
}
