package testsupport

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// StartRegistry runs .tools/bin/registry (installed by scripts/setup) until
// the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	bin := Tool(t, "registry")
	dir := t.TempDir()
	port := FreePort(t)
	host := "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &registryLog{}
	cmd := exec.Command(bin, "serve", cfgPath)
	// v3 exports OpenTelemetry traces by default; nothing listens for them here.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("registry log (404 noise dropped):\n%s", logs.Interesting())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &Registry{Host: host, Dir: dir}
			}
		}
		select {
		case <-done:
			t.Fatalf("registry exited before serving: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer on %s within 15s: %s", host, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registryLog collects a child's output while the test may read it.
type registryLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *registryLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *registryLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Interesting drops the registry's per-request 404 lines (HEAD probes for
// blobs it does not have yet are the normal push protocol).
func (b *registryLog) Interesting() string {
	var keep []string
	for _, l := range strings.Split(b.String(), "\n") {
		if !strings.Contains(l, `msg="response completed with error"`) || !strings.Contains(l, "status=404") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
