// Package ports picks the loopback ports the runtime's services listen on:
// the preferred port when it is free, else any free loopback port, except
// for a port the user asked for explicitly, which must be free.
package ports

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ErrInUse reports an explicitly requested port that is taken.
var ErrInUse = errors.New("port is in use")

// Request is one service's port wish.
type Request struct {
	Service   string
	Preferred int
	// Explicit is true when the user chose the port (--port): no fallback.
	Explicit bool
	// Flag names the option that set an explicit port, for the error message.
	Flag string
}

// Free reports whether 127.0.0.1:port can be listened on right now.
func Free(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Any returns a port the kernel considered free a moment ago.
func Any() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Choose picks a port for each request, never the same port twice.
// The result maps service name to port.
func Choose(reqs []Request) (map[string]int, error) {
	out := make(map[string]int, len(reqs))
	used := map[int]bool{}
	for _, r := range reqs {
		p, err := choose(r, used)
		if err != nil {
			return nil, err
		}
		used[p] = true
		out[r.Service] = p
	}
	return out, nil
}

func choose(r Request, used map[int]bool) (int, error) {
	if r.Preferred > 0 && !used[r.Preferred] && Free(r.Preferred) {
		return r.Preferred, nil
	}
	if r.Explicit {
		flag := r.Flag
		if flag == "" {
			flag = "the requested port"
		}
		return 0, fmt.Errorf("%s: port %d on 127.0.0.1 is %w: stop whatever listens there (`lsof -i :%d`) or choose another with %s",
			r.Service, r.Preferred, ErrInUse, r.Preferred, flag)
	}
	for range 20 {
		p, err := Any()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", r.Service, err)
		}
		if !used[p] {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%s: no free loopback port found", r.Service)
}
