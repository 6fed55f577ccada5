// Package browser opens a URL in the user's browser, best effort.
package browser

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
)

// Options configures Open.
type Options struct {
	// Getenv reads $BROWSER; nil means no override.
	Getenv func(string) string
}

// Command returns the argv that opens url on this OS, honouring $BROWSER.
func Command(url string, opts Options) ([]string, error) {
	if opts.Getenv != nil {
		if b := strings.TrimSpace(opts.Getenv("BROWSER")); b != "" {
			// $BROWSER may be a colon-separated list; the first entry wins.
			first := strings.Split(b, ":")[0]
			return append(strings.Fields(first), url), nil
		}
	}
	switch runtime.GOOS {
	case "darwin":
		return []string{"open", url}, nil
	case "linux", "freebsd", "openbsd", "netbsd":
		// WSL has no xdg-open by default; wslview comes with wslu.
		for _, c := range []string{"xdg-open", "wslview"} {
			if _, err := exec.LookPath(c); err == nil {
				return []string{c, url}, nil
			}
		}
		return nil, fmt.Errorf("no xdg-open or wslview on PATH")
	default:
		return nil, fmt.Errorf("opening a browser is not supported on %s", runtime.GOOS)
	}
}

// Open starts the browser without waiting for it to exit.
func Open(ctx context.Context, url string, opts Options) error {
	argv, err := Command(url, opts)
	if err != nil {
		return fmt.Errorf("open %s in a browser: %w", url, err)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open %s in a browser: %w", url, err)
	}
	// Reap it in the background; its exit status tells us nothing useful.
	go func() { _ = cmd.Wait() }()
	return nil
}
