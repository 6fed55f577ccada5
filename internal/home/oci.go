package home

import "path/filepath"

// OCILayerCacheDir caches base image layers by digest, so `release images`
// downloads a pinned base once: <release cache>/oci-layers.
func OCILayerCacheDir() (string, error) {
	c, err := ReleaseCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "oci-layers"), nil
}
