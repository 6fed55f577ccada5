package rehearse_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/second-inc/second-release/internal/artifact"
	"github.com/second-inc/second-release/internal/rehearse"
	"github.com/second-inc/second-release/internal/testsupport"
)

func TestImagesCheck(t *testing.T) {
	bin := testsupport.Tool(t, "registry")
	dist := t.TempDir()
	if err := artifact.Write(dist, &artifact.Release{Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	var pushedTo string
	detail, err := rehearse.ImagesCheck(context.Background(), rehearse.ImagesOptions{
		Dist: dist, WorkDir: t.TempDir(), RegistryBin: bin,
		// Stands in for `release images --push`: one random two-platform index.
		BuildPush: func(ctx context.Context, prefix string) error {
			pushedTo = prefix
			idx, err := random.Index(256, 1, 2)
			if err != nil {
				return err
			}
			ref, err := name.ParseReference(prefix + "/second-web:1.0.0")
			if err != nil {
				return err
			}
			if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
				return err
			}
			d, _ := idx.Digest()
			rel, _ := artifact.Read(dist)
			rel.Artifacts = append(rel.Artifacts, artifact.Artifact{Kind: artifact.KindImage, Name: "second-web", Version: "1.0.0", Digest: d.String()})
			return artifact.Write(dist, rel)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pushedTo, "127.0.0.1:") || !strings.Contains(detail, "1 images pushed") || !strings.Contains(detail, "3 verified") {
		t.Errorf("detail %q (pushed to %q)", detail, pushedTo)
	}

	// Nothing recorded: the check fails instead of passing vacuously.
	dist2 := t.TempDir()
	artifact.Write(dist2, &artifact.Release{Version: "1.0.0"})
	_, err = rehearse.ImagesCheck(context.Background(), rehearse.ImagesOptions{
		Dist: dist2, WorkDir: t.TempDir(), RegistryBin: bin,
		BuildPush: func(context.Context, string) error { return nil },
	})
	if err == nil || !strings.Contains(err.Error(), "no images") {
		t.Errorf("empty push: %v", err)
	}
}
