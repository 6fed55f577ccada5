// Package runstatus is the runtime's status as one wire type: what
// `second status --json` prints and the control server's GET /status
// answers, and how `second status` shows it to people. It stays free of
// the runtime and the control server so both (and the control client) can
// import it.
package runstatus

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the runtime's status. PackageName and ControlURL are set only
// in the control server's answer.
type Status struct {
	Running     bool       `json:"running"`
	Phase       string     `json:"phase"` // starting, running, stopping, stopped, failed
	PID         int        `json:"pid,omitempty"`
	Version     string     `json:"version,omitempty"`
	PackageName string     `json:"packageName,omitempty"`
	URL         string     `json:"url,omitempty"` // the web app
	ControlURL  string     `json:"controlUrl,omitempty"`
	Home        string     `json:"home"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	// NotResponding: the supervisor runs (its lock is held, its pid alive)
	// but its control server did not answer in time; Suspended says its
	// process is stopped (SIGSTOP, Ctrl-Z). Services then come from
	// runtime.json and may be stale.
	NotResponding bool      `json:"notResponding,omitempty"`
	Suspended     bool      `json:"suspended,omitempty"`
	Services      []Service `json:"services"`
}

// Service is one service's line.
type Service struct {
	Name          string     `json:"name"`
	State         string     `json:"state"`
	PID           int        `json:"pid,omitempty"`
	Port          int        `json:"port,omitempty"`
	Restarts      int        `json:"restarts"`
	StartedAt     *time.Time `json:"startedAt,omitempty"`
	UptimeSeconds int64      `json:"uptimeSeconds"`
}

// Write renders s for people.
func Write(w io.Writer, s Status) error {
	if !s.Running {
		fmt.Fprintf(w, "Second is not running (home %s).\n", s.Home)
		if s.Phase == "failed" {
			fmt.Fprintln(w, "The last run failed: see `second logs supervisor`.")
		}
		return nil
	}
	up := ""
	if s.StartedAt != nil {
		up = ", up " + human(time.Since(*s.StartedAt))
	}
	if s.NotResponding {
		since := ""
		if s.StartedAt != nil {
			since = ", running since " + s.StartedAt.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(w, "Second %s (pid %d%s) is not responding", s.Version, s.PID, since)
		if s.Suspended {
			fmt.Fprintf(w, ": its process is stopped (SIGSTOP or Ctrl-Z); `kill -CONT %d` resumes it, `second stop` ends it", s.PID)
		} else {
			fmt.Fprint(w, ": its control server did not answer; `second stop` ends it")
		}
		fmt.Fprintln(w, ".\nLast recorded service states:")
	} else {
		fmt.Fprintf(w, "Second %s is %s at %s (pid %d%s)\n", s.Version, s.Phase, s.URL, s.PID, up)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tPORT\tRESTARTS\tUPTIME")
	for _, svc := range s.Services {
		pid, uptime := "-", "-"
		if svc.PID != 0 {
			pid = fmt.Sprint(svc.PID)
		}
		if svc.StartedAt != nil {
			uptime = human(time.Duration(svc.UptimeSeconds) * time.Second)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", svc.Name, svc.State, pid, svc.Port, svc.Restarts, uptime)
	}
	return tw.Flush()
}

func human(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
