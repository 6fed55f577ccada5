package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/release/platform"
)

func plats(t *testing.T, ids ...string) []platform.Platform {
	var out []platform.Platform
	for _, id := range ids {
		p, err := platform.Parse(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestImagePlatforms(t *testing.T) {
	both := []string{"linux/amd64", "linux/arm64"}
	ctx := context.Background()

	res, err := Run(ctx, Options{Platforms: plats(t, "linux-x64", "linux-arm64", "darwin-arm64"), ImagePlatforms: both})
	if err != nil || strings.Join(res.ImagePlatforms, ",") != "linux/amd64,linux/arm64" || len(res.Notes) != 0 {
		t.Errorf("all built: %+v, %v", res, err)
	}

	// A rehearsal narrows the images to what it builds, and says so.
	res, err = Run(ctx, Options{Platforms: plats(t, "linux-x64"), ImagePlatforms: both, SubsetImages: true, ImagesFix: "pass --no-images"})
	if err != nil || strings.Join(res.ImagePlatforms, ",") != "linux/amd64" || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "linux-arm64 not being built") {
		t.Errorf("subset: %+v, %v", res, err)
	}

	// A cut refuses, naming the platforms to add.
	_, err = Run(ctx, Options{Platforms: plats(t, "linux-x64"), ImagePlatforms: both})
	if err == nil || !strings.Contains(err.Error(), "--platform linux-x64,linux-arm64") {
		t.Errorf("cut with a missing image platform: %v", err)
	}

	// No linux platform at all: even a rehearsal cannot build any image.
	_, err = Run(ctx, Options{Platforms: plats(t, "darwin-arm64"), ImagePlatforms: both, SubsetImages: true, ImagesFix: "pass --no-images"})
	if err == nil || !strings.Contains(err.Error(), "--no-images") {
		t.Errorf("no linux platform: %v", err)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Run(context.Background(), Options{
		Tools:     []string{"surely-not-a-tool-on-path"},
		OutDir:    t.TempDir(),
		FreeBytes: 1 << 62,
		Registry:  func(context.Context) error { return errors.New("registry https://r.example/ is unreachable") },
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"3 problems", "surely-not-a-tool-on-path is not on PATH", "GiB free", "--out", "unreachable"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}
