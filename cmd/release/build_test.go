package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input to `release build` fails before any work, naming what is wrong.
func TestBuildRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"web", "worker"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // the temp dir is no git checkout
	good := write("good.yaml", "apps: {web: web, worker: worker}\n")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"bad version", []string{"--config", good, "build", "--version", "1.2"}, []string{"--version", `"1.2"`, "semantic version"}},
		{"no version", []string{"--config", good, "build"}, []string{"--version", "--snapshot"}},
		{"both", []string{"--config", good, "build", "--version", "1.2.3", "--snapshot"}, []string{"exclude"}},
		{"bad platform", []string{"--config", good, "build", "--version", "1.2.3", "--platform", "windows-x64"}, []string{"--platform", "windows-x64", "supported"}},
		{"unknown field", []string{"--config", write("unknown.yaml", "apps: {web: web, worker: worker}\nplatfroms: [linux-x64]\n"), "build", "--version", "1.2.3"}, []string{"platfroms", "unknown.yaml"}},
		{"bad field", []string{"--config", write("scope.yaml", "scope: nope\napps: {web: web, worker: worker}\n"), "build", "--version", "1.2.3"}, []string{`field "scope"`}},
		{"missing app dir", []string{"--config", write("noapp.yaml", "apps: {web: nowhere, worker: worker}\n"), "build", "--version", "1.2.3"}, []string{`field "apps.web"`, "nowhere", "does not exist"}},
		{"bad --skip-natives platform", []string{"--config", good, "build", "--version", "1.2.3", "--skip-natives=linux-x64,windows-x64"}, []string{"--skip-natives", "windows-x64"}},
		{"--natives-locks not a dir", []string{"--config", good, "build", "--version", "1.2.3", "--natives-locks", filepath.Join(dir, "nolocks")}, []string{"--natives-locks", "nolocks", "not a directory"}},
		{"missing config", []string{"--config", filepath.Join(dir, "absent.yaml"), "build", "--snapshot"}, []string{"absent.yaml", "not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReleaseImages(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// Nothing was built.
			if _, err := os.Stat(filepath.Join(dir, "dist")); err == nil {
				t.Error("a refused build created dist/")
			}
		})
	}
}

// --skip-natives (and SECOND_RELEASE_SKIP_NATIVES) mean every platform, none, or a list.
func TestSkipNativesFor(t *testing.T) {
	cases := []struct {
		in   string
		all  bool
		want string
	}{
		{"", false, ""}, {"0", false, ""}, {"false", false, ""},
		{"1", true, ""}, {"all", true, ""}, {"true", true, ""},
		{"linux-arm64, darwin-x64", false, "linux-arm64,darwin-x64"},
	}
	for _, tc := range cases {
		all, ids := skipNativesFor(tc.in)
		if all != tc.all || strings.Join(ids, ",") != tc.want {
			t.Errorf("skipNativesFor(%q) = %v, %q; want %v, %q", tc.in, all, ids, tc.all, tc.want)
		}
	}
}
