package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/home"
)

func TestResetRefusals(t *testing.T) {
	userHome := t.TempDir()
	notOurs := t.TempDir()
	touch(t, filepath.Join(notOurs, "thesis.tex"), 0o644)
	tests := []struct {
		name, root, want string
	}{
		{"filesystem root", "/", "filesystem root"},
		{"user home itself", userHome, "your home directory itself"},
		{"user home via trailing slash", userHome + "/", "your home directory itself"},
		{"not created by second", notOurs, "second did not create it"},
		{"missing", filepath.Join(t.TempDir(), "nope"), "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confirmed := false
			err := Reset(context.Background(), ResetOptions{
				Layout: home.Layout{Root: tt.root}, UserHome: userHome,
				Confirm: func([]string) (bool, error) { confirmed = true; return true, nil },
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if confirmed {
				t.Error("asked for confirmation before refusing")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(notOurs, "thesis.tex")); err != nil {
		t.Errorf("a refused reset deleted a file: %v", err)
	}
}

func TestResetDeletesDataSecretsStateOnly(t *testing.T) {
	l := home.Layout{Root: filepath.Join(t.TempDir(), ".second")}
	if err := prepareHome(l); err != nil {
		t.Fatal(err)
	}
	keep := []string{l.Log("web"), filepath.Join(l.PayloadsDir(), "p@1", "x"), l.Marker()}
	gone := []string{filepath.Join(l.MongoData(), "a"), l.Secret(home.SecretControlToken), l.StateFile(), l.RedisConfig()}
	for _, p := range append(keep[:2:2], gone...) {
		touch(t, p, 0o600)
	}

	declined := Reset(context.Background(), ResetOptions{Layout: l, Confirm: func([]string) (bool, error) { return false, nil }})
	if !errors.Is(declined, ErrNotConfirmed) {
		t.Fatalf("declined reset: %v", declined)
	}
	if _, err := os.Stat(gone[0]); err != nil {
		t.Fatal("declined reset deleted data")
	}

	if err := Reset(context.Background(), ResetOptions{Layout: l}); err != nil {
		t.Fatal(err)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("reset deleted %s", p)
		}
	}
	for _, p := range gone {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("reset kept %s", p)
		}
	}
}

func TestPrepareHomeMarksOnlyHomesItOwns(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		want     bool
	}{
		{"new dir", nil, true},
		{"launcher created cli-payloads first", []string{"cli-payloads/x"}, true},
		{"a user's dir", []string{"notes.txt"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := home.Layout{Root: filepath.Join(t.TempDir(), "h")}
			for _, e := range tt.existing {
				touch(t, filepath.Join(l.Root, e), 0o644)
			}
			if err := prepareHome(l); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(l.Marker())
			if got := err == nil; got != tt.want {
				t.Errorf("marker written = %v, want %v", got, tt.want)
			}
		})
	}
}

// A home an earlier version (or the user) left open is restricted again on
// every start: dirs 0700, log files 0600.
func TestPrepareHomeTightensPermissions(t *testing.T) {
	l := home.Layout{Root: filepath.Join(t.TempDir(), "home")}
	if err := prepareHome(l); err != nil {
		t.Fatal(err)
	}
	logPath := l.Log(ServiceWeb)
	if err := os.WriteFile(logPath, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{l.Root, l.LogsDir(), l.DataDir(), l.MongoData()} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(logPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareHome(l); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{l.Root, 0o700}, {l.LogsDir(), 0o700}, {l.DataDir(), 0o700}, {l.MongoData(), 0o700}, {logPath, 0o600}} {
		st, err := os.Stat(c.path)
		if err != nil || st.Mode().Perm() != c.want {
			t.Errorf("%s: mode %v (%v), want %v", c.path, st.Mode().Perm(), err, c.want)
		}
	}
}
