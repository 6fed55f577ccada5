// Package platform names the targets a payload is built for, in Node's
// `${process.platform}-${process.arch}` form, and maps them to Go's names.
package platform

import (
	"fmt"
	"runtime"
	"strings"
)

// Platform is one payload target.
type Platform struct {
	ID     string // darwin-arm64
	GOOS   string // darwin
	GOARCH string // arm64
	NodeOS string // darwin (process.platform)
	CPU    string // arm64 (process.arch)
}

// All lists the supported targets, the first-class one first.
var All = []Platform{
	{ID: "darwin-arm64", GOOS: "darwin", GOARCH: "arm64", NodeOS: "darwin", CPU: "arm64"},
	{ID: "darwin-x64", GOOS: "darwin", GOARCH: "amd64", NodeOS: "darwin", CPU: "x64"},
	{ID: "linux-x64", GOOS: "linux", GOARCH: "amd64", NodeOS: "linux", CPU: "x64"},
	{ID: "linux-arm64", GOOS: "linux", GOARCH: "arm64", NodeOS: "linux", CPU: "arm64"},
}

// IDs returns the supported platform ids.
func IDs() []string {
	ids := make([]string, len(All))
	for i, p := range All {
		ids[i] = p.ID
	}
	return ids
}

// Parse looks up a platform id such as "linux-x64".
func Parse(id string) (Platform, error) {
	for _, p := range All {
		if p.ID == id {
			return p, nil
		}
	}
	return Platform{}, fmt.Errorf("unknown platform %q (supported: %s)", id, strings.Join(IDs(), ", "))
}

// FromGo maps GOOS/GOARCH to a platform.
func FromGo(goos, goarch string) (Platform, error) {
	for _, p := range All {
		if p.GOOS == goos && p.GOARCH == goarch {
			return p, nil
		}
	}
	return Platform{}, fmt.Errorf("unsupported platform %s/%s (supported: %s)", goos, goarch, strings.Join(IDs(), ", "))
}

// Host is the platform this process runs on.
func Host() (Platform, error) { return FromGo(runtime.GOOS, runtime.GOARCH) }
