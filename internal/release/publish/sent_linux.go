package publish

import (
	"errors"
	"strconv"

	"github.com/second-inc/second-release/internal/local/procutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sentBytes is how many bytes the peers of pid's TCP connections have
// acknowledged (tcp_info's bytes_acked, read through the kernel's socket
// diagnostics): what has really left npm for the registry, not what sits in
// a send buffer.
func sentBytes(pid int) (int64, bool) {
	inodes := map[uint32]bool{}
	for _, ino := range procutil.SocketInodes(pid) {
		if n, err := strconv.ParseUint(ino, 10, 32); err == nil {
			inodes[uint32(n)] = true
		}
	}
	if len(inodes) == 0 {
		return 0, false
	}
	var sum int64
	found := false
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCPInfo(family)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			continue
		}
		for _, s := range socks {
			if s.InetDiagMsg == nil || s.TCPInfo == nil || !inodes[s.InetDiagMsg.INode] {
				continue
			}
			sum += int64(s.TCPInfo.Bytes_acked)
			found = true
		}
	}
	return sum, found
}
