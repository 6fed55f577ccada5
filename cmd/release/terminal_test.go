package main

import (
	"bytes"
	"flag"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
	"github.com/second-inc/second-release/internal/testsupport/nativesmirror"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// screen is what a terminal shows after out: each line's text after its
// last carriage return and erase-line, colours removed.
func screen(out string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		l = strings.ReplaceAll(l, "\x1b[K", "")
		lines = append(lines, regexp.MustCompile(`\x1b\[[0-9;]*m`).ReplaceAllString(l, ""))
	}
	return strings.Join(lines, "\n") + "\n"
}

// variable are the parts of a build's output that differ between runs, in
// the order they are replaced (each replacement is idempotent).
var variable = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`took=\S+`), "took=<t>"},
	{regexp.MustCompile(`snapshot\.[0-9a-f]+`), "snapshot.<commit>"},
	{regexp.MustCompile(`commit=[0-9a-f]+`), "commit=<commit>"},
	{regexp.MustCompile(`source_date_epoch=\d+`), "source_date_epoch=<epoch>"},
	{regexp.MustCompile(`\b(size|bytes)=\d+`), "$1=<n>"},
	{regexp.MustCompile(`second-workerbuild-\d+`), "second-workerbuild-<n>"},
	{regexp.MustCompile(`\d+\.\d MiB`), "<n> MiB"},
	// The stand-in natives take their versions and bytes from this machine.
	{regexp.MustCompile(`sha256([:/])[0-9a-f]{64}`), "sha256$1<digest>"},
	{regexp.MustCompile(`(name=\w+ version=)\d+\.\d+\.\d+`), "${1}<v>"},
	{regexp.MustCompile(`-\d+\.\d+\.\d+(\.tgz| bottle)`), "-<v>$1"},
	{regexp.MustCompile(`new=/\S*/ld-linux\S*`), "new=<system loader>"},
	{regexp.MustCompile(`linux-(x64|arm64)`), "linux-<arch>"},
	{regexp.MustCompile(`linux-(x86_64|aarch64)`), "linux-<arch>"},
	{regexp.MustCompile(`\b(\d+(\.\d+)?(ms|s)|\d+m\d+(\.\d+)?s)\b`), "<t>"},
	{regexp.MustCompile(` {2,}<t>`), " <t>"},
}

// normalize makes a recording comparable across runs: temp paths become
// $TMP, durations <t>, and the version's commit, the epoch and sizes
// placeholders.
func normalize(s, tmp string) string {
	s = strings.ReplaceAll(s, tmp, "$TMP")
	s = strings.ReplaceAll(s, filepath.Dir(tmp), "$TESTDIR") // the mirror's temp dirs beside it
	for _, v := range variable {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// TestBuildTerminalRecording runs `release build` at a pseudo-terminal on
// the example app, with natives downloaded from a stand-in mirror, and
// compares the screen with testdata/build-terminal.golden (durations, sizes
// and temp paths normalized): one line per step with its duration, one line
// per download with its size and time, and no logfmt.
func TestBuildTerminalRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example app (Next.js, npm ci, GoReleaser); not in -short")
	}
	testsupport.Tool(t, "npm")
	testsupport.Tool(t, "goreleaser")
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("needs a linux-x64 or linux-arm64 host (the recording builds the host's payload with stand-in Linux natives)")
	}
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	if out, err := exec.Command("git", "clone", "-q", testsupport.RepoRoot(t), repo).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	// Natives from a stand-in mirror through an empty cache, so the
	// recording shows downloads.
	mirror := nativesmirror.Synthesize(t)
	t.Setenv("SECOND_RELEASE_MIRROR", mirror.Mirror)
	t.Setenv("SECOND_RELEASE_CACHE", filepath.Join(tmp, "cache"))
	t.Setenv("NO_COLOR", "1") // colours are the progress package's tests' business
	ptmx, tty := testsupport.OpenPTY(t)
	rec := make(chan []byte)
	go func() { b, _ := io.ReadAll(ptmx); rec <- b }()

	root := newRoot()
	var stdout bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(tty)
	root.SetArgs([]string{"--config", filepath.Join(repo, "release.yaml"), "build", "--snapshot",
		"--natives-locks", mirror.LocksDir, "--platform", host.ID, "--out", filepath.Join(tmp, "dist")})
	err = root.Execute()
	tty.Close()
	var raw []byte
	select {
	case raw = <-rec:
	case <-time.After(10 * time.Second):
		t.Fatal("terminal output never ended")
	}
	if err != nil {
		t.Fatalf("release build: %v\nterminal:\n%s", err, raw)
	}
	if strings.Contains(string(raw), "level=INFO") {
		t.Errorf("logfmt at a terminal:\n%s", raw)
	}
	got := normalize(screen(string(raw)), tmp)
	testsupport.Golden(t, filepath.Join("testdata", "build-terminal.golden"), got, *update)
}
