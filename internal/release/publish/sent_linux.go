package publish

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sentBytes is how many bytes the peers of pid's TCP connections have
// acknowledged (tcp_info's bytes_acked, read through the kernel's socket
// diagnostics): what has really left npm for the registry, not what sits in
// a send buffer.
func sentBytes(pid int) (int64, bool) {
	inodes := socketInodes(pid)
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

// socketInodes are the inodes of pid's open sockets (/proc/<pid>/fd links
// read "socket:[inode]").
func socketInodes(pid int) map[uint32]bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[uint32]bool{}
	for _, e := range entries {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 32); err == nil {
			out[uint32(n)] = true
		}
	}
	return out
}
