package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "web.log")
	w, err := Open(path, Options{MaxBytes: 100, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := fmt.Fprintf(w, "line %02d padded\n", i); err != nil { // 15 bytes
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("expected %s: %v", p, err)
		}
		if st.Size() > 100 {
			t.Errorf("%s is %d bytes, over MaxBytes 100", p, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("path.3 should not exist with Keep 2: %v", err)
	}
	cur, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(cur), "line 29 padded\n") {
		t.Errorf("current file should end with the last line, got %q", cur)
	}
	// No line is split across files.
	for _, p := range []string{path, path + ".1", path + ".2"} {
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if len(l) != 14 {
				t.Errorf("%s has a split line %q", p, l)
			}
		}
	}
}

func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	for _, s := range []string{"a\n", "b\n"} {
		w, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(s))
		w.Close()
	}
	if b, _ := os.ReadFile(path); string(b) != "a\nb\n" {
		t.Fatalf("got %q", b)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 20000)
	tests := []struct {
		name string
		cur  string
		prev string
		n    int
		want string
	}{
		{"missing", "", "", 5, ""},
		{"fewer lines than asked", "a\nb\n", "", 5, "a\nb\n"},
		{"last n", "a\nb\nc\nd\n", "", 2, "c\nd\n"},
		{"no trailing newline", "a\nb\nc", "", 2, "b\nc"},
		{"reaches into rotated file", "c\nd\n", "a\nb\n", 3, "b\nc\nd\n"},
		{"long lines over block size", "1\n" + long + "\n" + long + "\n", "", 2, long + "\n" + long + "\n"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint(i)+".log")
			if tc.cur != "" {
				os.WriteFile(path, []byte(tc.cur), 0o600)
			}
			if tc.prev != "" {
				os.WriteFile(path+".1", []byte(tc.prev), 0o600)
			}
			got, err := Tail(path, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Tail = %q, want %q", got, tc.want)
			}
		})
	}
}
