package listeners

import (
	"net"
	"os"
	"runtime"
	"testing"
)

func TestFindsOwnListeners(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("listener discovery reads /proc (Linux only)")
	}
	lo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	all, err := net.Listen("tcp", ":0") // every interface, v4 and v6
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	got, err := OfPIDs([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	find := func(port int) *Listener {
		for i := range got {
			if got[i].Port == port {
				return &got[i]
			}
		}
		return nil
	}
	if l := find(lo.Addr().(*net.TCPAddr).Port); l == nil || !l.Loopback() || l.String() != lo.Addr().String() {
		t.Errorf("loopback listener: %+v (all: %v)", l, got)
	}
	if l := find(all.Addr().(*net.TCPAddr).Port); l == nil || l.Loopback() || l.PID != os.Getpid() {
		t.Errorf("all-interfaces listener: %+v (all: %v)", l, got)
	}
	exp, err := Exposed([]int{os.Getpid()})
	if err != nil || len(exp) != 1 || exp[0].Port != all.Addr().(*net.TCPAddr).Port {
		t.Errorf("Exposed = %v, %v; want only the all-interfaces listener", exp, err)
	}
	if none, _ := OfPIDs([]int{1 << 30}); len(none) != 0 {
		t.Errorf("a pid that does not exist has listeners: %v", none)
	}
}
