package payload

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/pack"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// longName is a web file whose name no USTAR header can hold.
var longName = ".next/server/chunks/" + strings.Repeat("a-very-long-chunk-name-", 6) + ".js"

// fixture is a set of already built inputs for one payload.
type fixture struct {
	web, worker, runtime, binary string
}

func writeFile(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	root := t.TempDir()
	f := fixture{
		web:     filepath.Join(root, "web"),
		worker:  filepath.Join(root, "worker"),
		runtime: filepath.Join(root, "runtime"),
		binary:  filepath.Join(root, "second"),
	}
	for rel, content := range map[string]string{
		"server.js":                                 "require('next')\n",
		"package.json":                              `{"name":"web"}`,
		".next/BUILD_ID":                            "abc\n",
		".next/static/chunks/main.js":               "console.log('chunk')\n",
		"public/robots.txt":                         "User-agent: *\n",
		"node_modules/next/package.json":            `{"name":"next","version":"15.0.0"}`,
		"node_modules/next/dist/server/next.js":     "module.exports = {}\n",
		"node_modules/@img/sharp/lib/index.js":      "module.exports = {}\n",
		"node_modules/next/.gitignore":              "node_modules\n", // dropped
		"node_modules/styled-jsx/dist/.npmignore":   "x\n",            // dropped
		"node_modules/deep/node_modules/x/index.js": "1\n",
		longName: "long\n", // needs a PAX header in the tarball
	} {
		writeFile(t, filepath.Join(f.web, filepath.FromSlash(rel)), content, 0o644)
	}
	writeFile(t, filepath.Join(f.worker, "worker.mjs"), "export {}\n", 0o644)
	writeFile(t, filepath.Join(f.worker, "node_modules/native/build/Release/addon.js"), "x\n", 0o644)
	writeFile(t, filepath.Join(f.runtime, "bin/mongod"), "#!/bin/sh\necho mongod\n", 0o755)
	writeFile(t, filepath.Join(f.runtime, "bin/redis-server"), "#!/bin/sh\necho redis\n", 0o700)
	writeFile(t, filepath.Join(f.runtime, "lib/libssl.3.dylib"), "not really a dylib\n", 0o644)
	writeFile(t, filepath.Join(f.runtime, "downloads/mongodb.tgz"), "not copied\n", 0o644)
	writeFile(t, f.binary, "#!/bin/sh\necho \"second $*\"\n", 0o755)
	return f
}

func (f fixture) options(t *testing.T, p platform.Platform) Options {
	return Options{
		Name:            "@second-inc/cli-local-" + p.ID,
		Version:         "1.2.3",
		Platform:        p,
		TemplateDir:     filepath.Join(testsupport.RepoRoot(t), "packaging", p.ID),
		Dir:             filepath.Join(t.TempDir(), "stage"),
		SecondBinary:    f.binary,
		WebDir:          f.web,
		WorkerDir:       f.worker,
		RuntimeDir:      f.runtime,
		Natives:         map[string]manifest.Native{"mongod": {Version: "8.0.4", Source: "https://example.invalid/m.tgz", SHA256: strings.Repeat("a", 64)}},
		SourceDateEpoch: time.Unix(1_780_000_000, 0),
	}
}

func TestAssembleLayoutAndManifest(t *testing.T) {
	for _, p := range platform.All {
		t.Run(p.ID, func(t *testing.T) {
			f := newFixture(t)
			o := f.options(t, p)
			m, mb, err := Assemble(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			onDisk, err := os.ReadFile(filepath.Join(o.Dir, manifest.FileName))
			if err != nil || string(onDisk) != string(mb) {
				t.Fatalf("manifest.json on disk differs from returned bytes (err %v)", err)
			}
			wantFiles := []string{
				"README.md",
				"bin/second",
				"dist/runtime/bin/mongod",
				"dist/runtime/bin/redis-server",
				"dist/runtime/lib/libssl.3.dylib",
				"dist/web/.next/BUILD_ID",
				"dist/web/" + longName,
				"dist/web/.next/static/chunks/main.js",
				"dist/web/node_modules/@img/sharp/lib/index.js",
				"dist/web/node_modules/deep/node_modules/x/index.js",
				"dist/web/node_modules/next/dist/server/next.js",
				"dist/web/node_modules/next/package.json",
				"dist/web/package.json",
				"dist/web/public/robots.txt",
				"dist/web/server.js",
				"dist/worker/node_modules/native/build/Release/addon.js",
				"dist/worker/worker.mjs",
				"package.json",
			}
			var got []string
			for rel := range m.Files {
				got = append(got, rel)
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(wantFiles, "\n") {
				t.Errorf("manifest files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantFiles, "\n"))
			}
			problems, err := manifest.Verify(o.Dir, m, nil)
			if err != nil || len(problems) > 0 {
				t.Errorf("Verify: %v %+v", err, problems)
			}
			checkModesAndTimes(t, o, m)
			if m.Name != o.Name || m.Version != "1.2.3" || m.Platform != p.ID || m.Natives["mongod"].Version != "8.0.4" {
				t.Errorf("manifest header = %s %s %s %+v", m.Name, m.Version, m.Platform, m.Natives)
			}
			checkPackageJSON(t, o, p)
		})
	}
}

// checkModesAndTimes checks the manifest and disk modes of the payload's
// executables and plain files, and that their mtimes are SourceDateEpoch.
func checkModesAndTimes(t *testing.T, o Options, m *manifest.Manifest) {
	t.Helper()
	for rel, wantMode := range map[string]string{
		"bin/second": "0755", "dist/runtime/bin/mongod": "0755", "dist/runtime/bin/redis-server": "0755",
		"dist/web/server.js": "0644", "package.json": "0644",
	} {
		if m.Files[rel].Mode != wantMode {
			t.Errorf("%s: manifest mode %s, want %s", rel, m.Files[rel].Mode, wantMode)
		}
		st, err := os.Stat(filepath.Join(o.Dir, filepath.FromSlash(rel)))
		if err != nil || st.Mode().Perm() != map[string]os.FileMode{"0755": 0o755, "0644": 0o644}[wantMode] {
			t.Errorf("%s: disk mode %v (%v), want %s", rel, st.Mode(), err, wantMode)
		}
		if !st.ModTime().Equal(o.SourceDateEpoch) {
			t.Errorf("%s: mtime %v, want %v", rel, st.ModTime(), o.SourceDateEpoch)
		}
	}
}

// checkPackageJSON checks the payload's package.json carries its name,
// version, platform, bin and files, and no scripts.
func checkPackageJSON(t *testing.T, o Options, p platform.Platform) {
	t.Helper()
	var pj struct {
		Name, Version string
		OS, CPU       []string
		Bin           map[string]string
		Files         []string
		Scripts       map[string]string
	}
	b, _ := os.ReadFile(filepath.Join(o.Dir, "package.json"))
	if err := json.Unmarshal(b, &pj); err != nil {
		t.Fatal(err)
	}
	if pj.Name != o.Name || pj.Version != "1.2.3" || pj.OS[0] != p.NodeOS || pj.CPU[0] != p.CPU ||
		pj.Bin["second-local"] != "bin/second" || len(pj.Files) == 0 || pj.Scripts != nil {
		t.Errorf("package.json = %s", b)
	}
}

func TestAssembleWithoutRuntime(t *testing.T) {
	f := newFixture(t)
	p, _ := platform.Parse("darwin-arm64")
	o := f.options(t, p)
	o.RuntimeDir = ""
	m, _, err := Assemble(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(o.Dir, "dist", "runtime")); err != nil || !st.IsDir() {
		t.Errorf("dist/runtime missing: %v", err)
	}
	for rel := range m.Files {
		if strings.HasPrefix(rel, "dist/runtime/") {
			t.Errorf("unexpected %s", rel)
		}
	}
}

func TestAssembleRefuses(t *testing.T) {
	hostELF := "/bin/true"
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, f fixture, o *Options)
		want   []string
	}{
		{"missing server.js", func(t *testing.T, f fixture, o *Options) {
			os.Remove(filepath.Join(f.web, "server.js"))
		}, []string{"server.js", f_web}},
		{"missing worker.mjs", func(t *testing.T, f fixture, o *Options) {
			os.Remove(filepath.Join(f.worker, "worker.mjs"))
		}, []string{"worker.mjs"}},
		{"secrets", func(t *testing.T, f fixture, o *Options) {
			writeFile(t, filepath.Join(f.web, ".env"), "SECRET=1", 0o644)
			writeFile(t, filepath.Join(f.web, "node_modules/x/server.key"), "k", 0o644)
			writeFile(t, filepath.Join(f.worker, ".npmrc"), "//r/:_authToken=x", 0o644)
		}, []string{"dist/web/.env", "dist/web/node_modules/x/server.key", "dist/worker/.npmrc"}},
		{"symlink", func(t *testing.T, f fixture, o *Options) {
			if err := os.Symlink("server.js", filepath.Join(f.web, "index.js")); err != nil {
				t.Fatal(err)
			}
		}, []string{"dist/web/index.js", "symbolic link"}},
		{"staging dir not empty", func(t *testing.T, f fixture, o *Options) {
			writeFile(t, filepath.Join(o.Dir, "old"), "x", 0o644)
		}, []string{"not empty"}},
		{"wrong platform binary", func(t *testing.T, f fixture, o *Options) {
			if _, err := os.Stat(hostELF); err != nil {
				t.Skip("needs " + hostELF)
			}
			b, err := os.ReadFile(hostELF)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, o.SecondBinary, string(b), 0o755)
		}, []string{"bin/second", "another platform"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p, _ := platform.Parse("darwin-arm64") // never the host: /bin/true is an ELF
			o := f.options(t, p)
			tc.mutate(t, f, &o)
			_, _, err := Assemble(context.Background(), o)
			if err == nil {
				t.Fatal("Assemble succeeded, want refusal")
			}
			for _, w := range tc.want {
				if w == f_web {
					w = f.web
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if tc.name != "staging dir not empty" {
				if _, err := os.Stat(o.Dir); !os.IsNotExist(err) {
					t.Errorf("staging dir left behind after failure")
				}
			}
		})
	}
}

// f_web stands for the fixture's web dir in expectations.
const f_web = "<web dir>"

// TestPackedPayloadInstallsWithNPM packs an assembled payload for the host,
// installs the tarball with the real npm, and checks every manifest file
// arrived unchanged (nested node_modules included) and nothing else did.
func TestPackedPayloadInstallsWithNPM(t *testing.T) {
	npm := testsupport.Tool(t, "npm")
	host, err := platform.Host()
	if err != nil {
		t.Skip("needs a supported host platform: " + err.Error())
	}
	f := newFixture(t)
	o := f.options(t, host)
	m, _, err := Assemble(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(t.TempDir(), "payload.tgz")
	if err := pack.Tarball(context.Background(), o.Dir, tgz, o.SourceDateEpoch); err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	home := t.TempDir()
	cmd := exec.Command(npm, "install", "--prefix", prefix, "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tgz)
	cmd.Env = append(os.Environ(), "HOME="+home, "npm_config_cache="+filepath.Join(home, "cache"), "npm_config_userconfig="+filepath.Join(home, "npmrc"), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", tgz, err, out)
	}
	installed := filepath.Join(prefix, "node_modules", filepath.FromSlash(o.Name))
	im, ib, err := manifest.Read(installed)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := m.Marshal()
	if string(ib) != string(mb) {
		t.Errorf("installed manifest.json differs from the built one")
	}
	// npm may write nothing extra into a package dir it installs from a tarball.
	problems, err := manifest.Verify(installed, im, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("installed payload does not match its manifest: %+v", problems)
	}
	for _, rel := range []string{"dist/web/" + longName, "dist/web/node_modules/next/dist/server/next.js", "dist/web/node_modules/deep/node_modules/x/index.js", "dist/worker/node_modules/native/build/Release/addon.js"} {
		if _, ok := im.Files[rel]; !ok {
			t.Errorf("manifest lacks %s", rel)
		}
	}
	st, err := os.Stat(filepath.Join(installed, "bin", "second"))
	if err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/second not executable after install: %v %v", st, err)
	}
}

// TestAssemblePackReproducible builds the same payload twice from copies of
// the inputs in different temp dirs, at different times and file orders,
// and expects byte-identical tarballs.
func TestAssemblePackReproducible(t *testing.T) {
	p, _ := platform.Parse("darwin-arm64")
	var sums []string
	for i := 0; i < 2; i++ {
		f := newFixture(t)
		if i == 1 { // different on-disk times must not leak into the tarball
			old := time.Now().Add(-48 * time.Hour)
			filepath.Walk(f.web, func(p string, _ os.FileInfo, err error) error {
				if err == nil {
					os.Chtimes(p, old, old)
				}
				return err
			})
		}
		o := f.options(t, p)
		if _, _, err := Assemble(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "p.tgz")
		if err := pack.Tarball(context.Background(), o.Dir, out, o.SourceDateEpoch); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		s := sha512.Sum512(b)
		sums = append(sums, hex.EncodeToString(s[:]))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds of the same inputs differ:\n%s\n%s", sums[0], sums[1])
	}
}

// LinkTrees hard-links the web and worker files instead of copying them; the
// manifest is the same, and files from elsewhere (the template, the binary,
// the runtime) are still copies.
func TestAssembleLinkTrees(t *testing.T) {
	host, err := platform.Host()
	if err != nil {
		t.Skip("needs a supported host platform: " + err.Error())
	}
	f := newFixture(t)
	copied := f.options(t, host)
	_, want, err := Assemble(context.Background(), copied)
	if err != nil {
		t.Fatal(err)
	}
	linked := f.options(t, host)
	linked.LinkTrees = true
	_, got, err := Assemble(context.Background(), linked)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("manifest with LinkTrees differs:\n%s\nwant\n%s", got, want)
	}
	same := func(a, b string) bool {
		sa, err1 := os.Stat(a)
		sb, err2 := os.Stat(b)
		return err1 == nil && err2 == nil && os.SameFile(sa, sb)
	}
	if !same(filepath.Join(f.web, "server.js"), filepath.Join(linked.Dir, "dist/web/server.js")) ||
		!same(filepath.Join(f.worker, "worker.mjs"), filepath.Join(linked.Dir, "dist/worker/worker.mjs")) {
		t.Error("web and worker files were copied, not linked")
	}
	if same(f.binary, filepath.Join(linked.Dir, "bin/second")) || same(filepath.Join(f.runtime, "bin/mongod"), filepath.Join(linked.Dir, "dist/runtime/bin/mongod")) {
		t.Error("a file outside the web and worker trees was linked")
	}
	if same(filepath.Join(f.web, "server.js"), filepath.Join(copied.Dir, "dist/web/server.js")) {
		t.Error("without LinkTrees a web file was linked")
	}
}
