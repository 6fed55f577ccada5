package ports

import (
	"errors"
	"net"
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
