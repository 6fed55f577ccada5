package pipeline

import (
	"os"

	"github.com/second-inc/second-release/internal/release/filetree"
)

// copyTree copies src to dst (created fresh). Build trees hold no symbolic
// links by the time they get here; one is an error rather than silently dropped.
func copyTree(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return filetree.Copy(src, dst, filetree.CopyOptions{Symlinks: filetree.RefuseLinks, Modes: filetree.SourceModes})
}
