// Package listeners finds the TCP ports a set of processes listens on and
// on which addresses, so the runtime can warn when a child it told to use
// loopback listens on every interface anyway.
package listeners

import (
	"fmt"
	"net"
	"strconv"
)

// Listener is one listening TCP socket of one process.
type Listener struct {
	PID  int
	Addr net.IP
	Port int
}

// Loopback reports whether only this machine can connect.
func (l Listener) Loopback() bool { return l.Addr.IsLoopback() }

// String is the address as a client would write it: 0.0.0.0:3001, [::]:3001.
func (l Listener) String() string { return net.JoinHostPort(l.Addr.String(), strconv.Itoa(l.Port)) }

// OfPIDs lists what the given processes listen on. ErrUnsupported where
// the OS offers no lsof-free way to tell.
func OfPIDs(pids []int) ([]Listener, error) { return ofPIDs(pids) }

// Exposed lists the listeners of pids that are not on loopback.
func Exposed(pids []int) ([]Listener, error) {
	all, err := OfPIDs(pids)
	if err != nil {
		return nil, err
	}
	var out []Listener
	for _, l := range all {
		if !l.Loopback() {
			out = append(out, l)
		}
	}
	return out, nil
}

// ErrUnsupported: no listener discovery on this OS.
var ErrUnsupported = fmt.Errorf("listing a process's listening sockets is not supported on this OS")
