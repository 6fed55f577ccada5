package runstatus

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The JSON shape is a wire format (`second status --json`, GET /status):
// empty optional fields stay out, services is never null.
func TestStatusJSON(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		st   Status
		want string
	}{
		{"stopped", Status{Phase: "stopped", Home: "/h", Services: []Service{}},
			`{"running":false,"phase":"stopped","home":"/h","services":[]}`},
		{"stopped service", Status{Phase: "stopped", Home: "/h", Services: []Service{{Name: "web", State: "stopped", Port: 3030}}},
			`{"running":false,"phase":"stopped","home":"/h","services":[{"name":"web","state":"stopped","port":3030,"restarts":0,"uptimeSeconds":0}]}`},
		{"server", Status{Running: true, Phase: "running", PID: 7, Version: "1.0.0", PackageName: "@s/cli", URL: "http://localhost:3030",
			ControlURL: "http://127.0.0.1:4000", Home: "/h", StartedAt: &start, Services: []Service{}},
			`{"running":true,"phase":"running","pid":7,"version":"1.0.0","packageName":"@s/cli","url":"http://localhost:3030","controlUrl":"http://127.0.0.1:4000","home":"/h","startedAt":"2026-01-02T03:04:05Z","services":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.st)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestWriteLongUptime(t *testing.T) {
	start := time.Now().Add(-(26*time.Hour + 5*time.Minute))
	var b strings.Builder
	st := Status{Running: true, Phase: "running", PID: 1, Version: "1.0.0", URL: "http://localhost:3030", StartedAt: &start,
		Services: []Service{{Name: "redis", State: "ready", StartedAt: &start, UptimeSeconds: int64((2*time.Hour + 3*time.Minute) / time.Second)}, {Name: "web", State: "starting"}}}
	if err := Write(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"up 26h5m)", "redis", "2h3m", "web      starting  -"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
