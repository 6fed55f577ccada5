package publish

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
)

// CheckRegistry is the registry half of publishing's checks, for a
// preflight before anything is built: the registry the launcher package
// goes to answers, and npm holds a valid login for it.
func CheckRegistry(ctx context.Context, o Options, launcher string) error {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	conf, err := npmconf.Load(npmconf.Options{Env: env, ProjectDir: o.ProjectDir})
	if err != nil {
		return fmt.Errorf("read npm configuration: %w", err)
	}
	reg := o.Registry
	if reg == "" {
		reg = conf.RegistryFor(launcher)
	}
	reg = strings.TrimSuffix(reg, "/") + "/"
	var reader Registry = &npmregistry.Client{Registry: reg, Config: conf}
	if o.Reader != nil {
		reader = o.Reader
	}
	if err := reader.Ping(ctx); err != nil {
		return fmt.Errorf("registry %s is unreachable: %v; check --registry or the registry setting in your npm config", reg, err)
	}
	user, err := reader.Whoami(ctx)
	if err != nil && !refused(err) {
		return fmt.Errorf("ask %s who we are (GET -/whoami): %v", reg, err)
	}
	if err != nil || user == "" {
		return fmt.Errorf("not authenticated to %s: run `npm login --registry %s` or add %s:_authToken=<token> to ~/.npmrc", reg, reg, nerf(reg))
	}
	return nil
}
