package devstack

import (
	"net"
	"strconv"
	"testing"
)

// holdPort keeps 127.0.0.1:port taken until the test ends.
func holdPort(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func itoa(n int) string { return strconv.Itoa(n) }
