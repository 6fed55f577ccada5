package testsupport

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/ociregistry"
)

// Registry is a real distribution/distribution (CNCF) registry serving plain
// HTTP on a loopback port, with its storage in a temp dir.
type Registry struct {
	// Host is 127.0.0.1:<port>; ggcr, cosign and skopeo treat loopback as
	// plain HTTP (skopeo needs --tls-verify=false).
	Host string
	// Dir is the registry's storage root.
	Dir string
}

// StartRegistry runs .tools/bin/registry (installed by scripts/setup)
// through ociregistry, the rehearsal's launcher, until the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := Tool(t, "registry")
	dir := t.TempDir()
	reg, err := ociregistry.Start(context.Background(), bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("stop registry: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(reg.Log)
			t.Logf("registry log (404 noise dropped):\n%s", interesting(string(b)))
		}
	})
	return &Registry{Host: reg.Host, Dir: dir}
}

// interesting drops the registry's per-request 404 lines (HEAD probes for
// blobs it does not have yet are the normal push protocol).
func interesting(log string) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="response completed with error"`) || !strings.Contains(l, "status=404") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
