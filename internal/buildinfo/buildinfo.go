// Package buildinfo holds the version and commit stamped into both binaries
// at link time (-X via GoReleaser, Nix or `release build`).
package buildinfo

// Set with -ldflags "-X github.com/second-inc/second-release/internal/buildinfo.Version=…".
var (
	Version = "0.0.0-dev"
	Commit  = "none"
	Date    = ""
)
