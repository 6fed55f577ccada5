package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The runtime ships to every user: it must not drag in the release side
// (signing, registries, image building, bundlers).
func TestSecondDoesNotImportReleaseSide(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{
		"github.com/sigstore/",
		"github.com/google/go-containerregistry",
		"github.com/evanw/esbuild",
		"github.com/compose-spec/",
		"github.com/goreleaser/",
		"github.com/second-inc/second-release/internal/release/",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed only %d packages; the check would be meaningless", len(deps))
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("cmd/second depends on %s (forbidden prefix %s)", dep, f)
			}
		}
	}
}
