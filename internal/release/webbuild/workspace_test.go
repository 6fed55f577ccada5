package webbuild

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/testsupport"
)

// An app inside an npm workspace (like the product's apps/web) that imports a
// workspace package: it is staged with its workspace root and the result still
// has server.js on top and runs.
func TestBuildWorkspaceApp(t *testing.T) {
	requireNode(t)
	root := filepath.Join(t.TempDir(), "mono")
	files := map[string]string{
		"package.json":                 `{"name":"mono","private":true,"workspaces":["apps/*","packages/*"]}`,
		"packages/shared/package.json": `{"name":"@ex/shared","version":"1.0.0","main":"index.js"}`,
		"packages/shared/index.js":     `exports.greeting = () => "hello from the workspace";` + "\n",
		"apps/web/package.json": `{"name":"@ex/web","version":"0.0.0","private":true,
  "dependencies":{"@ex/shared":"1.0.0","next":"15.5.29","react":"19.3.1","react-dom":"19.3.1"}}`,
		"apps/web/next.config.mjs": `export default { output: "standalone", generateBuildId: async () => process.env.SECOND_BUILD_ID || null };` + "\n",
		"apps/web/app/layout.js":   `export default function L({ children }) { return <html><body>{children}</body></html>; }` + "\n",
		"apps/web/app/page.js":     `export default function P() { return <p>mono</p>; }` + "\n",
		"apps/web/app/api/health/route.js": `import { greeting } from "@ex/shared";
export const dynamic = "force-dynamic";
export function GET() { return Response.json({ ok: true, greeting: greeting() }); }
`,
		"apps/web/public/mono.txt": "mono public\n",
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "web")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := Build(ctx, Options{AppDir: filepath.Join(root, "apps", "web"), OutDir: out, BuildID: testBuildID, SourceDateEpoch: testEpoch}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"server.js", "public/mono.txt", ".next/static/" + testBuildID, "node_modules/next/package.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("out lacks %s: %v", p, err)
		}
	}
	top, _ := os.ReadDir(out)
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	t.Logf("top level of the built workspace app: %v", names)
	if _, err := os.Stat(filepath.Join(out, "apps")); !os.IsNotExist(err) {
		t.Errorf("the app's old parent dir apps/ should not be left behind")
	}
	if links, _ := testsupport.Symlinks(out); len(links) != 0 {
		t.Errorf("links left: %v", links)
	}

	port := testsupport.FreePort(t)
	cmd := exec.CommandContext(ctx, "node", "server.js")
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "HOSTNAME=127.0.0.1", fmt.Sprintf("PORT=%d", port), "NODE_ENV=production")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/health", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "hello from the workspace") {
				t.Fatalf("GET /api/health = %d %s\n%s", resp.StatusCode, b, logs.String())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
