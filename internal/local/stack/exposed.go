package stack

import (
	"errors"
	"fmt"

	"github.com/second-inc/second-release/internal/local/listeners"
	"github.com/second-inc/second-release/internal/local/procutil"
)

// warnExposed warns, naming the service and the address, about any child
// that listens beyond loopback although it was told 127.0.0.1: another
// machine could reach it.
func (rt *Runtime) warnExposed() {
	for _, s := range rt.sup.Status() {
		if s.PID == 0 {
			continue
		}
		members := append([]int{s.PID}, procutil.GroupMembers(s.PID)...)
		exposed, err := listeners.Exposed(members)
		if errors.Is(err, listeners.ErrUnsupported) {
			return
		}
		if err != nil {
			rt.log.Warn("cannot list listening sockets", "service", s.Name, "err", err)
			continue
		}
		for _, l := range exposed {
			rt.log.Warn("listens beyond loopback", "service", s.Name, "pid", l.PID, "addr", l.String())
			fmt.Fprintf(rt.opts.Out, "Warning: %s (pid %d) listens on %s, beyond loopback: other machines may reach it. It was told to listen on 127.0.0.1 (HOST/HOSTNAME).\n",
				s.Name, l.PID, l.String())
		}
	}
}
