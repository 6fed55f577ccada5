package version

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"1.2.3", "v1.2.3", "1.3.0-rc.1", "0.0.1-snapshot.abc1234"} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1.2", "latest", "1.2.3.4", "01.2.3", "1.2.3-"} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "--version") {
			t.Errorf("%q: error does not name the flag: %v", bad, err)
		}
	}
}

func TestSnapshot(t *testing.T) {
	cases := []struct{ tag, short, want string }{
		{"", "abc1234", "0.0.1-snapshot.abc1234"},
		{"v1.2.3", "abc1234", "1.2.4-snapshot.abc1234"},
		{"v1.3.0-rc.1", "abc1234", "1.3.0-snapshot.abc1234"},
		{"v1.2.3", "0123456", "1.2.4-snapshot.g0123456"},
	}
	for _, c := range cases {
		got := Snapshot(Git{LatestTag: c.tag, ShortCommit: c.short}).String()
		if got != c.want {
			t.Errorf("tag %q commit %s: %s, want %s", c.tag, c.short, got, c.want)
		}
		if _, err := Parse(got); err != nil {
			t.Errorf("snapshot %s is not valid semver: %v", got, err)
		}
	}
}

func TestReadGit(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if _, err := ReadGit(context.Background(), dir); err == nil {
		t.Fatal("a directory without git gave no error")
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	git("add", "f")
	git("commit", "-qm", "one")
	git("tag", "v1.0.0")
	git("tag", "v1.2.0")
	git("tag", "not-a-version")
	g, err := ReadGit(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if g.LatestTag != "v1.2.0" || len(g.ShortCommit) < 7 || g.CommitTime.Unix() != 1767323045 {
		t.Fatalf("%+v", g)
	}
	if s := Snapshot(g).String(); !strings.HasPrefix(s, "1.2.1-snapshot.") {
		t.Fatalf("snapshot %s", s)
	}
}
