//go:build !linux

package listeners

// ofPIDs: macOS has no /proc; its socket tables need libproc or sysctl
// calls not reachable from plain Go, so the check is skipped there.
func ofPIDs([]int) ([]Listener, error) { return nil, ErrUnsupported }
