package webbuild

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/testsupport"
)

// fakeNext is a stand-in `next` package whose `next build` writes what the
// mode file in the app asks for, so the steps around the real build (staging,
// npm, assembly, links, build id) are tested in a second instead of minutes.
const fakeNext = `#!/usr/bin/env node
const fs = require("fs");
const path = require("path");
const mode = fs.readFileSync("fake-mode", "utf8").trim();
const id = mode === "random-id" ? "Zx9_random-build-id-01" : process.env.SECOND_BUILD_ID;
const sa = ".next/standalone";
fs.mkdirSync(path.join(".next/static", id), { recursive: true });
fs.writeFileSync(path.join(".next/static", id, "_buildManifest.js"), "self.__BUILD_MANIFEST={id:" + JSON.stringify(id) + "}");
fs.writeFileSync(".next/BUILD_ID", id);
if (mode === "no-standalone") process.exit(0);
fs.mkdirSync(path.join(sa, ".next/server"), { recursive: true });
fs.mkdirSync(path.join(sa, "node_modules/real"), { recursive: true });
fs.writeFileSync(path.join(sa, ".next/BUILD_ID"), id);
fs.writeFileSync(path.join(sa, ".next/server/pages-manifest.json"), JSON.stringify({ id }));
fs.writeFileSync(path.join(sa, "node_modules/real/index.js"), "module.exports = 1;\n");
const rnd = (n) => require("crypto").randomBytes(n).toString("hex");
fs.writeFileSync(path.join(sa, ".next/prerender-manifest.json"), JSON.stringify({ version: 4, preview: {
  previewModeId: rnd(16), previewModeSigningKey: rnd(32), previewModeEncryptionKey: rnd(32) } }));
fs.symlinkSync("real", path.join(sa, "node_modules/linked"));
if (mode === "outside-link") fs.symlinkSync("/etc/hostname", path.join(sa, "escape"));
if (mode !== "no-server") fs.writeFileSync(path.join(sa, "server.js"), "console.log('server', process.env.SECOND_BUILD_ID)\n");
`

func fakeApp(t *testing.T, mode string) string {
	t.Helper()
	app := t.TempDir()
	files := map[string]string{
		"package.json":                    `{"name":"fake-web","private":true,"dependencies":{"next":"file:./fake-next"}}`,
		"fake-mode":                       mode,
		"public/hello.txt":                "hello\n",
		"fake-next/package.json":          `{"name":"next","version":"0.0.0-fake","bin":{"next":"dist/bin/next"}}`,
		"fake-next/dist/bin/next":         fakeNext,
		"node_modules/stale/package.json": `{"name":"stale"}`, // must not be staged
		".next/standalone/server.js":      "stale output",     // must not be staged
	}
	for name, data := range files {
		p := filepath.Join(app, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return app
}

func fakeBuild(t *testing.T, mode string) (string, error) {
	t.Helper()
	requireNode(t)
	out := filepath.Join(t.TempDir(), "web")
	err := Build(context.Background(), Options{
		AppDir: fakeApp(t, mode), OutDir: out, BuildID: "c0ffee" + strings.Repeat("0", 34),
		SourceDateEpoch: testEpoch, StageDir: filepath.Join(t.TempDir(), "stage"),
	})
	return out, err
}

func TestFakeBuild(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		wantErr string
	}{
		{"ok", ""},
		{"random-id", ""},
		{"no-standalone", `set output: "standalone"`},
		{"no-server", "no .next/standalone/server.js"},
		{"outside-link", "escape points outside the tree"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			out, err := fakeBuild(t, tc.mode)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := "c0ffee" + strings.Repeat("0", 34)
			got := hashTree(t, out)
			for _, p := range []string{"server.js", "public/hello.txt", ".next/static/" + want + "/_buildManifest.js", "node_modules/linked/index.js"} {
				if _, ok := got[p]; !ok {
					t.Errorf("out lacks %s; has %v", p, got)
				}
			}
			if _, ok := got["node_modules/stale"]; ok {
				t.Errorf("the app's own node_modules leaked into the build")
			}
			if links, _ := testsupport.Symlinks(out); len(links) != 0 {
				t.Errorf("links left: %v", links)
			}
			var pm struct{ Preview map[string]string }
			data, _ := os.ReadFile(filepath.Join(out, ".next", "prerender-manifest.json"))
			if err := json.Unmarshal(data, &pm); err != nil || fmt.Sprint(pm.Preview) != fmt.Sprint(previewKeys(want)) {
				t.Errorf("preview keys %v (%v), want the ones derived from the build id", pm.Preview, err)
			}
			for _, f := range []string{".next/BUILD_ID", ".next/server/pages-manifest.json", ".next/static/" + want + "/_buildManifest.js"} {
				data, _ := os.ReadFile(filepath.Join(out, f))
				if !strings.Contains(string(data), want) || strings.Contains(string(data), "Zx9_random") {
					t.Errorf("%s = %q, want the fixed build id only", f, data)
				}
			}
		})
	}
}

func TestBuildOptionErrors(t *testing.T) {
	app := fakeApp(t, "ok")
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	noPkg := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"missing app dir", Options{AppDir: filepath.Join(t.TempDir(), "nope"), OutDir: t.TempDir() + "/w", BuildID: "x"}, "does not exist"},
		{"no package.json", Options{AppDir: noPkg, OutDir: t.TempDir() + "/w", BuildID: "x"}, "no package.json"},
		{"no build id", Options{AppDir: app, OutDir: t.TempDir() + "/w"}, "no build id"},
		{"out not empty", Options{AppDir: app, OutDir: full, BuildID: "x"}, "not empty"},
		{"out inside app", Options{AppDir: app, OutDir: filepath.Join(app, "dist"), BuildID: "x"}, "outside the app dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Build(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
