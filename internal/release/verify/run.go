package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/release/imagerun"
	"github.com/second-inc/second-release/internal/release/oci"
)

// RunHostImages pulls the web and worker images ImagesCheck pushed and
// signed (held registry) with podman, the way operators pull them, runs the
// host platform's image of each as its non-root user on a read-only root
// filesystem, and waits for /api/health and /health to answer 200 (the
// rehearsal's run check). It returns a one-line summary.
func RunHostImages(ctx context.Context, r *ImagesReport, log *slog.Logger) (string, error) {
	if r == nil || r.Web == "" || r.Worker == "" {
		return "", errors.New("no pushed web and worker images to run (the images check did not finish)")
	}
	if why := (imagerun.Podman{}).Usable(ctx); why != "" {
		return "", fmt.Errorf("%s; or rehearse with --no-images", why)
	}
	webPort, err := freePort()
	if err != nil {
		return "", err
	}
	workerPort, err := freePort()
	if err != nil {
		return "", err
	}
	webEnv, workerEnv := imagerun.ContractEnv(r.Version, webPort, workerPort)
	res, err := imagerun.Run(ctx, imagerun.Options{Insecure: true, Timeout: 90 * time.Second, Log: log}, []imagerun.App{
		{Name: "web", Ref: r.Web, Port: webPort, Health: "/api/health", Writable: oci.Web.WritableDirs(), Env: webEnv},
		{Name: "worker", Ref: r.Worker, Port: workerPort, Health: "/health", Writable: oci.Worker.WritableDirs(), Env: workerEnv},
	})
	if err != nil {
		return "", err
	}
	var parts []string
	for _, x := range res {
		parts = append(parts, fmt.Sprintf("%s %d in %s as %s", x.Name, x.Status, x.Healthy.Round(10*time.Millisecond), x.User))
	}
	return fmt.Sprintf("%s images pulled by podman, read-only root: %s after podman run", oci.HostPlatform(), strings.Join(parts, ", ")), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
