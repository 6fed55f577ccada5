// Package nixcheck keeps the Nix build honest: the vendorHash in nix/ must be
// the NAR hash of `go mod vendor` output (what buildGoModule checks), and
// every .nix file must parse. Both use Debian's nix-bin, which works offline.
package nixcheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// VendorHashFile holds the vendorHash, relative to the repository.
const VendorHashFile = "nix/vendor-hash.nix"

var sriRe = regexp.MustCompile(`"(sha256-[A-Za-z0-9+/=]{44})"`)

// ReadVendorHash returns the hash recorded in file.
func ReadVendorHash(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	m := sriRe.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no \"sha256-…\" vendorHash found", file)
	}
	return string(m[1]), nil
}

// ComputeVendorHash vendors the module at repo into a temp dir and returns
// the NAR hash of that dir in SRI form.
func ComputeVendorHash(ctx context.Context, repo string) (string, error) {
	tmp, err := os.MkdirTemp("", "second-vendor-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	vendor := filepath.Join(tmp, "vendor")
	cmd := exec.CommandContext(ctx, "go", "mod", "vendor", "-o", vendor)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod vendor: %w\n%s", err, out)
	}
	return NarHash(ctx, vendor)
}

// NarHash runs `nix hash path` on dir.
func NarHash(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "nix", "--extra-experimental-features", "nix-command", "hash", "path", "--type", "sha256", "--sri", dir)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("nix hash path %s: %w: %s", dir, err, ee.Stderr)
		}
		return "", fmt.Errorf("nix hash path %s: %w (install Debian's nix-bin: scripts/setup does)", dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// CheckVendorHash compares the recorded hash with a fresh computation; a
// stale one fails with the command that prints the right value.
func CheckVendorHash(ctx context.Context, repo, file string) error {
	want, err := ReadVendorHash(file)
	if err != nil {
		return err
	}
	got, err := ComputeVendorHash(ctx, repo)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s is stale: it records %s but `go mod vendor` hashes to %s.\n"+
			"Print the right value with: go run ./tools/vendorhash -print\n"+
			"(or write it: go run ./tools/vendorhash -fix)", file, want, got)
	}
	return nil
}

// WriteVendorHash replaces the hash in file.
func WriteVendorHash(file, hash string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !sriRe.Match(b) {
		return fmt.Errorf("%s: no \"sha256-…\" vendorHash to replace", file)
	}
	return os.WriteFile(file, sriRe.ReplaceAll(b, []byte(`"`+hash+`"`)), 0o644)
}

// ParseAll runs `nix-instantiate --parse` on every .nix file under repo
// (flake.nix and nix/), returning every failure.
func ParseAll(ctx context.Context, repo string) error {
	files := []string{filepath.Join(repo, "flake.nix")}
	more, _ := filepath.Glob(filepath.Join(repo, "nix", "*.nix"))
	files = append(files, more...)
	var fails []string
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "nix-instantiate", "--parse", f).CombinedOutput()
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v\n%s", f, err, out))
		}
	}
	if len(fails) > 0 {
		return fmt.Errorf("nix files that do not parse:\n%s", strings.Join(fails, "\n"))
	}
	return nil
}
