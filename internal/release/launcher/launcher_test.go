package launcher

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/payload"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

func template(t *testing.T) string { return filepath.Join(testsupport.RepoRoot(t), "packaging", "npm") }

func allPayloads() []Payload {
	var ps []Payload
	for i, p := range platform.All {
		ps = append(ps, Payload{Platform: p.ID, Name: "@second-inc/cli-local-" + p.ID, ManifestSHA256: strings.Repeat(string("abcd"[i]), 64)})
	}
	return ps
}

func TestAssemble(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "launcher")
	epoch := time.Unix(1_780_000_000, 0)
	err := Assemble(context.Background(), Options{TemplateDir: template(t), Dir: dir, Name: "@second-inc/cli", Version: "1.2.3", Payloads: allPayloads(), SourceDateEpoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	sort.Strings(got)
	if strings.Join(got, " ") != "README.md bin/second.js package.json" {
		t.Errorf("launcher files = %v, want README.md bin/second.js package.json (no tests)", got)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "second.js"))
	if err != nil || st.Mode().Perm() != 0o755 || !st.ModTime().Equal(epoch) {
		t.Errorf("bin/second.js: %v %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	var pj struct {
		Name, Version string
		Bin           map[string]string
		Engines       map[string]string
		Files         []string
		Scripts       map[string]string
		Dependencies  map[string]string
		Payloads      map[string]recorded `json:"secondPayloads"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		t.Fatal(err)
	}
	if pj.Name != "@second-inc/cli" || pj.Version != "1.2.3" || pj.Bin["second"] != "bin/second.js" ||
		pj.Engines["node"] != ">=20" || pj.Scripts != nil || pj.Dependencies != nil {
		t.Errorf("package.json = %s", b)
	}
	if len(pj.Payloads) != 4 || pj.Payloads["darwin-arm64"].Name != "@second-inc/cli-local-darwin-arm64" || pj.Payloads["linux-arm64"].ManifestSHA256 != strings.Repeat("d", 64) {
		t.Errorf("secondPayloads = %+v", pj.Payloads)
	}
}

func TestAssembleRefuses(t *testing.T) {
	withDeps := t.TempDir()
	os.MkdirAll(filepath.Join(withDeps, "bin"), 0o755)
	os.WriteFile(filepath.Join(withDeps, "bin", "second.js"), []byte("//"), 0o644)
	os.WriteFile(filepath.Join(withDeps, "package.json"), []byte(`{"name":"x","dependencies":{"left-pad":"1"}}`), 0o644)
	for _, tc := range []struct {
		name     string
		template string
		payloads []Payload
		want     string
	}{
		{"no payloads", "", nil, "no payloads"},
		{"bad digest", "", []Payload{{Platform: "linux-x64", Name: "p", ManifestSHA256: "xyz"}}, `manifest sha256 "xyz"`},
		{"unknown platform", "", []Payload{{Platform: "win32-x64", Name: "p", ManifestSHA256: strings.Repeat("a", 64)}}, `unknown platform "win32-x64"`},
		{"duplicate", "", []Payload{{Platform: "linux-x64", Name: "p", ManifestSHA256: strings.Repeat("a", 64)}, {Platform: "linux-x64", Name: "q", ManifestSHA256: strings.Repeat("b", 64)}}, "two payloads for linux-x64"},
		{"dependencies", withDeps, allPayloads(), "zero dependencies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpl := tc.template
			if tpl == "" {
				tpl = template(t)
			}
			dir := filepath.Join(t.TempDir(), "l")
			err := Assemble(context.Background(), Options{TemplateDir: tpl, Dir: dir, Name: "@second-inc/cli", Version: "1.0.0", Payloads: tc.payloads})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Assemble error = %v, want it to mention %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Error("staging dir left behind")
			}
		})
	}
}

// TestInstalledLauncherRunsPayload is the chain end to end with the real
// npm and node: Go-assembled payload and launcher, packed by pack.Tarball,
// installed from their tarballs; the launcher then runs the payload both
// from SECOND_CLI_PAYLOAD_DIR and by installing the payload tarball itself.
func TestInstalledLauncherRunsPayload(t *testing.T) {
	npm := testsupport.Tool(t, "npm")
	testsupport.Tool(t, "node")
	host, err := platform.Host()
	if err != nil {
		t.Skip("needs a supported host platform: " + err.Error())
	}
	ctx := context.Background()
	root := t.TempDir()
	epoch := time.Unix(1_780_000_000, 0)
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("in/web/server.js", "//\n", 0o644)
	write("in/web/node_modules/next/index.js", "//\n", 0o644)
	write("in/worker/worker.mjs", "//\n", 0o644)
	write("in/second", "#!/bin/sh\necho \"second $* $SECOND_CLI_RELEASE_PACKAGE@$SECOND_CLI_RELEASE_VERSION launched=$SECOND_LAUNCHED_BY_CLI npm_quiet=$npm_config_update_notifier/$npm_config_fund/$npm_config_audit\"\n", 0o755)
	payloadName := "@second-inc/cli-local-" + host.ID
	_, mb, err := payload.Assemble(ctx, payload.Options{
		Name: payloadName, Version: "1.2.3", Platform: host,
		TemplateDir:  filepath.Join(testsupport.RepoRoot(t), "packaging", host.ID),
		Dir:          filepath.Join(root, "stage", "payload"),
		SecondBinary: filepath.Join(root, "in", "second"),
		WebDir:       filepath.Join(root, "in", "web"), WorkerDir: filepath.Join(root, "in", "worker"),
		SourceDateEpoch: epoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = Assemble(ctx, Options{
		TemplateDir: template(t), Dir: filepath.Join(root, "stage", "launcher"), Name: "@second-inc/cli", Version: "1.2.3",
		Payloads: []Payload{{Platform: host.ID, Name: payloadName, ManifestSHA256: manifest.Digest(mb)}}, SourceDateEpoch: epoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	payloadTgz := filepath.Join(root, "npm", "payload.tgz")
	launcherTgz := filepath.Join(root, "npm", "launcher.tgz")
	if err := pack.Tarball(ctx, filepath.Join(root, "stage", "payload"), payloadTgz, epoch); err != nil {
		t.Fatal(err)
	}
	if err := pack.Tarball(ctx, filepath.Join(root, "stage", "launcher"), launcherTgz, epoch); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(root, "home")
	// The launcher runs as a user would run it: nothing quiets npm but the
	// launcher itself.
	env := append(os.Environ(), "HOME="+home, "npm_config_cache="+filepath.Join(root, "npm-cache"),
		"npm_config_userconfig="+filepath.Join(root, "no-npmrc"), "npm_config_offline=true")
	env = withoutKeys(env, "SECOND_HOME", "SECOND_CLI_PAYLOAD_DIR", "SECOND_CLI_PAYLOAD_PACKAGE",
		"npm_config_update_notifier", "npm_config_fund", "npm_config_audit")
	prefix := filepath.Join(root, "prefix")
	if out, err := runEnv(append(env, "npm_config_update_notifier=false"), npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", launcherTgz, payloadTgz); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	second := filepath.Join(prefix, "node_modules", ".bin", "second")
	installedPayload := filepath.Join(prefix, "node_modules", filepath.FromSlash(payloadName))

	out, err := runEnv(append(env, "SECOND_CLI_PAYLOAD_DIR="+installedPayload), second, "version")
	if err != nil || !strings.Contains(out, "second version @second-inc/cli@1.2.3 launched=1") {
		t.Fatalf("launcher with SECOND_CLI_PAYLOAD_DIR: %v\n%s", err, out)
	}
	if strings.Contains(out, "unverified") {
		t.Errorf("payload dir ran unverified although the launcher records its digest:\n%s", out)
	}

	out, err = runEnv(append(env, "SECOND_CLI_PAYLOAD_PACKAGE="+payloadTgz), second, "version")
	if err != nil || !strings.Contains(out, "second version @second-inc/cli@1.2.3 launched=1") || !strings.Contains(out, "installing") {
		t.Fatalf("launcher installing the payload: %v\n%s", err, out)
	}
	// The first-run transcript: npm ran with its notices off (the payload
	// sees the launcher's environment) and printed none.
	if !strings.Contains(out, "npm_quiet=false/false/false") || strings.Contains(out, "npm notice") {
		t.Errorf("the launcher did not turn npm's notices off:\n%s", out)
	}
	installed := filepath.Join(home, ".second", "cli-payloads", payloadName+"@1.2.3", "node_modules", filepath.FromSlash(payloadName))
	m, _, err := manifest.Read(installed)
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := manifest.Verify(installed, m, nil); err != nil || len(problems) > 0 {
		t.Errorf("payload installed by the launcher does not match its manifest: %v %+v", err, problems)
	}
}

func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func withoutKeys(env []string, keys ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
