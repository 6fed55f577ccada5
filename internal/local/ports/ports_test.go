package ports

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free, err := Any()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		reqs    []Request
		wantErr error
		check   func(t *testing.T, got map[string]int)
	}{
		{"preferred free is kept", []Request{{Service: "web", Preferred: free}}, nil,
			func(t *testing.T, got map[string]int) {
				if got["web"] != free {
					t.Errorf("web = %d, want preferred %d", got["web"], free)
				}
			}},
		{"preferred taken falls back", []Request{{Service: "web", Preferred: busyPort}}, nil,
			func(t *testing.T, got map[string]int) {
				if got["web"] == busyPort || got["web"] == 0 {
					t.Errorf("web = %d, want a fallback port", got["web"])
				}
			}},
		{"explicit taken fails", []Request{{Service: "web", Preferred: busyPort, Explicit: true, Flag: "--port"}}, ErrInUse, nil},
		{"no duplicates", []Request{{Service: "a", Preferred: free}, {Service: "b", Preferred: free}}, nil,
			func(t *testing.T, got map[string]int) {
				if got["a"] == got["b"] {
					t.Errorf("both services got port %d", got["a"])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.reqs)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

// A listener on [::1]:<port> (where browsers go first for "localhost")
// makes the port taken although 127.0.0.1:<port> is free.
func TestIPv6LoopbackListenerTakesThePort(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("needs ::1 (IPv6 loopback) on this machine")
	}
	planted, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer planted.Close()
	port := planted.Addr().(*net.TCPAddr).Port
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Skipf("127.0.0.1:%d is taken too; the test needs it free: %v", port, err)
	} else {
		l.Close()
	}
	if takenOn(port) == "" {
		t.Fatalf("port %d reported free with a listener on [::1]", port)
	}
	got, err := Choose([]Request{{Service: "web", Preferred: port}})
	if err != nil || got["web"] == port {
		t.Errorf("Choose = %v, %v; want another port than %d", got, err, port)
	}
	_, err = Choose([]Request{{Service: "web", Preferred: port, Explicit: true, Flag: "--port"}})
	want := "web: port " + strconv.Itoa(port) + " is in use on ::1: stop whatever listens there"
	if !errors.Is(err, ErrInUse) || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("explicit port: %v, want %q", err, want)
	}
}

func TestChooseExceptAvoidsReservedPorts(t *testing.T) {
	reserved, err := Any()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ChooseExcept([]Request{{Service: "web", Preferred: reserved}}, map[int]bool{reserved: true})
	if err != nil || got["web"] == reserved || got["web"] == 0 {
		t.Errorf("got %v, %v; want a port other than the reserved %d", got, err, reserved)
	}
	_, err = ChooseExcept([]Request{{Service: "web", Preferred: reserved, Explicit: true, Flag: "WEB_PORT"}}, map[int]bool{reserved: true})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "WEB_PORT") {
		t.Errorf("explicit reserved port: %v", err)
	}
}
