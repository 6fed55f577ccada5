// Package ports picks the loopback ports the runtime's services listen on:
// the preferred port when it is free, else any free loopback port, except
// for a port the user asked for explicitly, which must be free. A port is
// free only when both 127.0.0.1 and ::1 are: browsers resolve "localhost"
// to ::1 first, so a listener there would get the user's browser.
package ports

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// ErrInUse reports an explicitly requested port that is taken.
var ErrInUse = errors.New("in use")

// Request is one service's port wish.
type Request struct {
	Service   string
	Preferred int
	// Explicit is true when the user chose the port (--port): no fallback.
	Explicit bool
	// Flag names the option that set an explicit port, for the error message.
	Flag string
}

// takenOn names the loopback address where port is taken, "" if none.
func takenOn(port int) string {
	for _, host := range []string{"127.0.0.1", "::1"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			if host == "::1" && !hasIPv6Loopback() {
				continue
			}
			return host
		}
		l.Close()
	}
	return ""
}

// hasIPv6Loopback reports whether ::1 can be listened on at all (it is
// absent where IPv6 is disabled; then only 127.0.0.1 matters).
func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Any returns a port the kernel considered free on both loopback
// addresses a moment ago.
func Any() (int, error) {
	var last error
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if on := takenOn(p); on != "" {
			last = fmt.Errorf("port %d is taken on %s", p, on)
			continue
		}
		return p, nil
	}
	return 0, fmt.Errorf("find a free loopback port: %w", last)
}

// Choose picks a port for each request, never the same port twice.
// The result maps service name to port.
func Choose(reqs []Request) (map[string]int, error) { return ChooseExcept(reqs, nil) }

// ChooseExcept is Choose that also never picks a port in taken: ports other
// stacks have reserved but may not listen on yet. A preferred port in taken
// falls back like a busy one; an explicit one is refused.
func ChooseExcept(reqs []Request, taken map[int]bool) (map[string]int, error) {
	out := make(map[string]int, len(reqs))
	used := map[int]bool{}
	for p := range taken {
		used[p] = true
	}
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
	on := ""
	if r.Preferred > 0 && !used[r.Preferred] {
		if on = takenOn(r.Preferred); on == "" {
			return r.Preferred, nil
		}
	}
	if r.Explicit {
		flag := r.Flag
		if flag == "" {
			flag = "the requested port"
		}
		where := "by another of our services"
		if on != "" {
			where = "on " + on
		}
		return 0, fmt.Errorf("%s: port %d is %w %s: stop whatever listens there (`lsof -i :%d`) or choose another with %s",
			r.Service, r.Preferred, ErrInUse, where, r.Preferred, flag)
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
