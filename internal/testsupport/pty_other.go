//go:build !linux

package testsupport

import (
	"os"
	"testing"
)

// OpenPTY skips: the pseudo-terminal is opened with Linux ioctls
// (TIOCSPTLCK, TIOCGPTN); the terminal-rendering tests run on Linux.
func OpenPTY(t testing.TB) (ptmx, tty *os.File) {
	t.Helper()
	t.Skip("this test opens a pseudo-terminal with Linux ioctls; run it on Linux")
	return nil, nil
}
