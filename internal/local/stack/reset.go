package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/second-inc/second-release/internal/home"
)

// ErrNotConfirmed is returned when the user declines the reset.
var ErrNotConfirmed = errors.New("reset cancelled: nothing was deleted")

// ResetOptions configures Reset.
type ResetOptions struct {
	Layout home.Layout
	// Confirm asks the user; it is called after the safety checks and
	// before anything is stopped or deleted. Nil means confirmed (--yes).
	Confirm func(what []string) (bool, error)
	Out     io.Writer
	// UserHome is the user's home dir (default os.UserHomeDir), which is
	// never deleted from.
	UserHome string
}

// ResetTargets are what reset deletes: data, secrets and state. Logs and
// installed payloads stay (they hold nothing of the user's and the
// payloads are expensive to download again).
func ResetTargets(l home.Layout) []string {
	return []string{l.DataDir(), l.SecretsDir(), l.StateFile(), l.ControlFile(), l.RedisConfig()}
}

// CheckResettable refuses homes reset must never touch.
func CheckResettable(l home.Layout, userHome string) error {
	root := filepath.Clean(l.Root)
	if !filepath.IsAbs(root) {
		return fmt.Errorf("refusing to reset %q: not an absolute path", l.Root)
	}
	if root == string(filepath.Separator) {
		return fmt.Errorf("refusing to reset %s: it is the filesystem root; pass the Second home with --home", root)
	}
	if userHome == "" {
		userHome, _ = os.UserHomeDir()
	}
	if userHome != "" && samePath(root, userHome) {
		return fmt.Errorf("refusing to reset %s: it is your home directory itself, not a Second home (default ~/.second)", root)
	}
	st, err := os.Stat(root)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nothing to reset: %s does not exist", root)
	}
	if err != nil {
		return fmt.Errorf("reset %s: %w", root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("refusing to reset %s: not a directory", root)
	}
	if _, err := os.Stat(l.Marker()); err != nil {
		return fmt.Errorf("refusing to reset %s: second did not create it (no %s marker); delete what you want by hand",
			root, filepath.Base(l.Marker()))
	}
	return nil
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// Reset stops a running runtime and deletes its data, secrets and state.
func Reset(ctx context.Context, o ResetOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	l := o.Layout
	if err := CheckResettable(l, o.UserHome); err != nil {
		return err
	}
	targets := ResetTargets(l)
	if o.Confirm != nil {
		ok, err := o.Confirm(targets)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotConfirmed
		}
	}
	if _, err := StopRunning(ctx, StopOptions{Layout: l, Out: o.Out}); err != nil {
		return fmt.Errorf("stop the running runtime before reset: %w", err)
	}
	for _, t := range targets {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("reset: delete %s: %w", t, err)
		}
	}
	fmt.Fprintf(o.Out, "Reset %s: deleted data, secrets and state.\n", l.Root)
	return nil
}
