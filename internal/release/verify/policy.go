package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// PolicyFiles is a containers/image configuration that makes podman, CRI-O
// and skopeo refuse images under a repository prefix unless they carry a
// cosign signature from one public key: a policy.json (sigstoreSigned with
// keyPath) and a registries.d file telling them to read the signatures cosign
// stores next to the image (use-sigstore-attachments).
type PolicyFiles struct {
	Policy      []byte // policy.json
	Registries  []byte // registries.d/<name>.yaml
	PolicyPath  string // where WritePolicy put them ("" before)
	RegistryDir string
}

// Policy builds the files for repoPrefix (e.g. ghcr.io/second-inc) and the
// public key at keyPath (made absolute: containers/image needs that).
// Images outside the prefix keep the default, insecureAcceptAnything, so
// third-party images (mongo, redis) still pull; signatures are matched by
// repository so both tag and digest pulls are checked.
func Policy(repoPrefix, keyPath string) (*PolicyFiles, error) {
	prefix := strings.TrimSuffix(repoPrefix, "/")
	last := prefix[strings.LastIndex(prefix, "/")+1:]
	tagged := strings.Contains(prefix, "/") && strings.Contains(last, ":")
	if _, err := name.NewRepository(prefix + "/x"); err != nil || tagged || strings.Contains(prefix, "@") {
		return nil, fmt.Errorf("--print-policy %q: want a repository prefix such as ghcr.io/second-inc (no tag or digest)", repoPrefix)
	}
	abs, err := filepath.Abs(keyPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	policy := map[string]any{
		"default": []any{map[string]string{"type": "insecureAcceptAnything"}},
		"transports": map[string]any{
			"docker": map[string]any{
				prefix: []any{map[string]any{
					"type":           "sigstoreSigned",
					"keyPath":        abs,
					"signedIdentity": map[string]string{"type": "matchRepository"},
				}},
			},
		},
	}
	pj, err := json.MarshalIndent(policy, "", "  ")
	if err != nil {
		return nil, err
	}
	reg := fmt.Sprintf("# containers/image registries.d: read cosign signatures stored in the registry\n# (sha256-<digest>.sig tags) for images under %s.\ndocker:\n  %s:\n    use-sigstore-attachments: true\n", prefix, prefix)
	return &PolicyFiles{Policy: append(pj, '\n'), Registries: []byte(reg)}, nil
}

// WritePolicy writes p as policy.json and registries.d/<file>.yaml in dir.
func (p *PolicyFiles) WritePolicy(dir, file string) error {
	p.PolicyPath = filepath.Join(dir, "policy.json")
	p.RegistryDir = filepath.Join(dir, "registries.d")
	if err := os.MkdirAll(p.RegistryDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p.PolicyPath, p.Policy, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.RegistryDir, file+".yaml"), p.Registries, 0o644)
}
