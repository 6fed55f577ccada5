package oci

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/second-inc/second-release/internal/release/artifact"
)

// Record replaces the image artifacts of dist/release.json with built (one
// per index, Digest set, Path the layout dir relative to dist) and writes it.
func Record(dist, layoutDir string, rel *artifact.Release, built []Built) error {
	rp, err := filepath.Rel(dist, layoutDir)
	if err != nil {
		return err
	}
	kept := rel.Artifacts[:0]
	for _, a := range rel.Artifacts {
		if a.Kind != artifact.KindImage {
			kept = append(kept, a)
		}
	}
	rel.Artifacts = kept
	for _, b := range built {
		rel.Artifacts = append(rel.Artifacts, artifact.Artifact{
			Kind: artifact.KindImage, Name: b.Name, Version: rel.Version,
			Path: filepath.ToSlash(rp), Digest: b.Digest,
		})
	}
	if err := artifact.Write(dist, rel); err != nil {
		return fmt.Errorf("record images in %s: %w", filepath.Join(dist, artifact.FileName), err)
	}
	return nil
}

// ImageRefs are the pinned references (<prefix>/<name>@<digest>) of the
// image artifacts in rel, by image name.
func ImageRefs(prefix string, rel *artifact.Release) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range rel.Filter(artifact.KindImage) {
		out[a.Name] = PinnedRef(prefix, a.Name, a.Digest)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("release.json lists no images: run `release images --push PREFIX` first")
	}
	return out, nil
}

// ReleaseImageRefs are the pinned references of dist/release.json's images
// at prefix, sorted: what sign and verify work on after `release images --push`.
func ReleaseImageRefs(dist, prefix string) ([]string, error) {
	rel, err := artifact.Read(dist)
	if err != nil {
		return nil, err
	}
	m, err := ImageRefs(prefix, rel)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range m {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}
