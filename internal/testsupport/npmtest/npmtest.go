// Package npmtest publishes small packages to a test registry (Verdaccio) the
// way `npm publish` does — one PUT of the packument with the tarball attached —
// so tests can set up versions and dist-tags in milliseconds. Tests only.
package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Package is one version to publish.
type Package struct {
	// Manifest is package.json; "name" and "version" are required.
	Manifest map[string]any
	// Files are extra files by path inside the package (package.json is
	// written from Manifest); a path ending in ".js" under bin/ gets mode 0755.
	Files map[string]string
	// Tag is the dist-tag to set, default "latest".
	Tag string
}

// Publish uploads pkg to registryURL with the bearer token.
func Publish(ctx context.Context, registryURL, token string, pkg Package) error {
	name, _ := pkg.Manifest["name"].(string)
	version, _ := pkg.Manifest["version"].(string)
	if name == "" || version == "" {
		return fmt.Errorf("npmtest: manifest needs name and version")
	}
	tag := pkg.Tag
	if tag == "" {
		tag = "latest"
	}
	tgz, err := Tarball(pkg)
	if err != nil {
		return err
	}
	sum512 := sha512.Sum512(tgz)
	sum1 := sha1.Sum(tgz)
	reg := strings.TrimSuffix(registryURL, "/") + "/"
	file := name + "-" + version + ".tgz"
	manifest := map[string]any{}
	for k, v := range pkg.Manifest {
		manifest[k] = v
	}
	manifest["_id"] = name + "@" + version
	manifest["dist"] = map[string]any{
		"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sum512[:]),
		"shasum":    hex.EncodeToString(sum1[:]),
		"tarball":   reg + name + "/-/" + file,
	}
	doc := map[string]any{
		"_id": name, "name": name,
		"dist-tags": map[string]string{tag: version},
		"versions":  map[string]any{version: manifest},
		"access":    nil,
		"_attachments": map[string]any{file: map[string]any{
			"content_type": "application/octet-stream",
			"data":         base64.StdEncoding.EncodeToString(tgz),
			"length":       len(tgz),
		}},
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	esc := name
	if i := strings.IndexByte(name, '/'); strings.HasPrefix(name, "@") && i > 0 {
		esc = name[:i] + "%2f" + name[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, reg+esc, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("npmtest: publish %s@%s: %w", name, version, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("npmtest: publish %s@%s: HTTP %d: %s", name, version, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Tarball builds the package's .tgz (entries under "package/", fixed times).
func Tarball(pkg Package) ([]byte, error) {
	files := map[string]string{}
	for k, v := range pkg.Files {
		files[k] = v
	}
	pj, err := json.MarshalIndent(pkg.Manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	files["package.json"] = string(pj) + "\n"
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC) // npm's fixed pack time
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasPrefix(n, "bin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: mode, Size: int64(len(files[n])), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
