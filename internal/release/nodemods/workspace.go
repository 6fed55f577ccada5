package nodemods

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// WorkspaceRoot finds the npm workspace an app without its own lock file
// belongs to: the nearest parent whose package.json declares workspaces
// (stopping at a git repository's top). It returns the directory to install
// in and the app's path inside it ("." for an app with its own lock file or
// outside any workspace).
func WorkspaceRoot(app string) (root, rel string, err error) {
	app, err = filepath.Abs(app)
	if err != nil {
		return "", "", err
	}
	if exists(filepath.Join(app, "package-lock.json")) || exists(filepath.Join(app, "npm-shrinkwrap.json")) {
		return app, ".", nil
	}
	for dir := filepath.Dir(app); ; dir = filepath.Dir(dir) {
		if data, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
			var pj struct {
				Workspaces json.RawMessage `json:"workspaces"`
			}
			if json.Unmarshal(data, &pj) == nil && len(pj.Workspaces) > 0 && string(pj.Workspaces) != "null" {
				rel, err := filepath.Rel(dir, app)
				return dir, rel, err
			}
		}
		if exists(filepath.Join(dir, ".git")) || filepath.Dir(dir) == dir {
			return app, ".", nil
		}
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
