package rehearse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/sign"
	"github.com/second-inc/second-release/internal/verify"
)

// OCIRegistry is a distribution registry on a loopback port (plain HTTP,
// which go-containerregistry and cosign accept for loopback hosts).
type OCIRegistry struct {
	Host string // 127.0.0.1:<port>
	cmd  *exec.Cmd
	done chan struct{}
}

// StartOCIRegistry runs bin (distribution's `registry`) with storage in dir.
func StartOCIRegistry(ctx context.Context, dir, bin string) (*OCIRegistry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %q\nhttp:\n  addr: %q\n",
		filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", cfgPath)
	// distribution v3 exports traces by default; nothing listens for them.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start OCI registry %s: %w", bin, err)
	}
	r := &OCIRegistry{Host: host, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("OCI registry exited at start; see %s", filepath.Join(dir, "registry.log"))
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("OCI registry at %s not ready after 20s; see %s", host, filepath.Join(dir, "registry.log"))
		}
	}
}

// Stop kills the registry's process group.
func (r *OCIRegistry) Stop() {
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
}

// ImagesOptions configure ImagesCheck.
type ImagesOptions struct {
	Dist    string
	WorkDir string
	// RegistryBin is distribution's `registry` executable.
	RegistryBin string
	// BuildPush builds the images from Dist and pushes them under prefix,
	// recording them in Dist/release.json (`release images --push` in the CLI).
	BuildPush func(ctx context.Context, prefix string) error
}

// ImagesCheck pushes the release's images to a private OCI registry, signs
// them with a fresh cosign key and verifies them with its public half.
func ImagesCheck(ctx context.Context, o ImagesOptions) (string, error) {
	reg, err := StartOCIRegistry(ctx, filepath.Join(o.WorkDir, "oci-registry"), o.RegistryBin)
	if err != nil {
		return "", err
	}
	defer reg.Stop()
	prefix := reg.Host + "/second"
	if err := o.BuildPush(ctx, prefix); err != nil {
		return "", fmt.Errorf("build and push images: %w", err)
	}
	rel, err := artifact.Read(o.Dist)
	if err != nil {
		return "", err
	}
	var refs []string
	var targets []verify.Target
	for _, a := range rel.Filter(artifact.KindImage) {
		ref := prefix + "/" + a.Name + "@" + a.Digest
		refs = append(refs, ref)
		targets = append(targets, verify.Target{Ref: ref})
	}
	if len(refs) == 0 {
		return "", errors.New("no images recorded in release.json after the push")
	}
	keyDir := filepath.Join(o.WorkDir, "cosign")
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return "", err
	}
	pw := []byte(secret())
	key, pub := filepath.Join(keyDir, "cosign.key"), filepath.Join(keyDir, "cosign.pub")
	if err := sign.GenerateKeyPair(key, pub, pw); err != nil {
		return "", fmt.Errorf("generate a rehearsal cosign key: %w", err)
	}
	signer, err := sign.LoadSigner(key, pw)
	if err != nil {
		return "", err
	}
	signed, err := sign.Sign(ctx, sign.Options{Signer: signer, Refs: refs})
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	verifier, err := sign.LoadVerifier(pub)
	if err != nil {
		return "", err
	}
	rows, err := verify.Verify(ctx, verify.Options{Verifier: verifier, Targets: targets})
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	return fmt.Sprintf("%d images pushed to %s, %d manifests signed, %d verified with the public key", len(refs), reg.Host, len(signed), len(rows)), nil
}
