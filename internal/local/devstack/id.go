package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FindRepo returns the product checkout at or above dir: the nearest dir
// holding apps/web/package.json and apps/worker/package.json.
func FindRepo(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	for d := abs; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "apps", "web", "package.json")) && isFile(filepath.Join(d, "apps", "worker", "package.json")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("%s is not inside a Second checkout (no apps/web/package.json and apps/worker/package.json at or above it): run second dev from the repository, or pass --repo DIR", abs)
}

var validID = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ID is the worktree's stable dev id: SECOND_DEV_ID when set, else the
// branch name (the worktree's directory name on a detached HEAD) made
// DNS-safe, plus a short hash of the repository path, so two clones on the
// same branch differ and the id stays the same across restarts.
func ID(repo string, getenv func(string) string) (string, error) {
	if v := strings.TrimSpace(getenv("SECOND_DEV_ID")); v != "" {
		id := strings.ToLower(v)
		if !validID.MatchString(id) {
			return "", fmt.Errorf("SECOND_DEV_ID=%q: must be 1-63 letters, digits or '-', not starting or ending with '-' (it becomes a host name)", v)
		}
		return id, nil
	}
	name := branch(repo)
	if name == "" || name == "HEAD" {
		name = filepath.Base(repo)
	}
	sum := sha256.Sum256([]byte(repo))
	slug := slugify(name)
	if len(slug) > 40 {
		slug = strings.TrimRight(slug[:40], "-")
	}
	if slug == "" {
		slug = "dev"
	}
	return slug + "-" + hex.EncodeToString(sum[:])[:6], nil
}

// branch is the checked-out branch of the git worktree at repo, "" when
// git or the repository is missing.
func branch(repo string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--abbrev-ref", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// checkIgnored returns the paths git would not ignore, nil when git is absent.
func checkIgnored(repo string, rels ...string) []string {
	var missing []string
	for _, rel := range rels {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "git", "-C", repo, "check-ignore", "-q", "--no-index", rel).Run()
		cancel()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			missing = append(missing, rel)
		}
	}
	return missing
}
