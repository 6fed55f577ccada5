package testsupport

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/platform"
)

// fakeLauncher does what the real launcher does, minus the checks: install
// this version's payload for the host under ~/.second/cli-payloads with the
// user's npm config, then run its bin/second.
const fakeLauncher = `#!/usr/bin/env node
const {execFileSync} = require('child_process');
const path = require('path'), os = require('os');
const pkg = require('../package.json');
const name = pkg.payloads[process.platform + '-' + process.arch];
const dir = path.join(os.homedir(), '.second', 'cli-payloads', name + '@' + pkg.version);
execFileSync('npm', ['install', '--prefix', dir, name + '@' + pkg.version, '--no-audit', '--no-fund'], {stdio: ['ignore', 'ignore', 'inherit']});
process.stdout.write(execFileSync(path.join(dir, 'node_modules', name, 'bin', 'second'), process.argv.slice(2)));
`

// FakeRelease returns a build hook that writes a release of prefix@version into dist: the host's payload
// (whose bin/second prints printed) and one other, plus the launcher.
func FakeRelease(t *testing.T, dist, prefix, version, printed string) func(context.Context) (*artifact.Release, error) {
	t.Helper()
	return func(context.Context) (*artifact.Release, error) {
		host, err := platform.Host()
		if err != nil {
			return nil, err
		}
		other := "darwin-arm64"
		if host.ID == other {
			other = "linux-x64"
		}
		os.MkdirAll(filepath.Join(dist, "npm"), 0o755)
		rel := &artifact.Release{Version: version, Commit: "0000000"}
		payloads := map[string]string{}
		for _, id := range []string{host.ID, other} {
			name := "@second-inc/" + prefix + "-cli-local-" + id
			payloads[id] = name
			pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "bin": map[string]string{"second-local": "bin/second"}})
			p := filepath.Join(dist, "npm", prefix+"-payload-"+id+".tgz")
			WriteNpmTarball(t, p, map[string]string{
				"package.json":  string(pj),
				"bin/second":    "#!/bin/sh\necho " + printed + "\n",
				"manifest.json": `{"version":"` + version + `"}`,
			}, "bin/second")
			a, err := artifact.FromFile(dist, p, artifact.Artifact{Kind: artifact.KindPayload, Name: name, Version: version, Platform: id})
			if err != nil {
				return nil, err
			}
			rel.Artifacts = append(rel.Artifacts, a)
		}
		name := "@second-inc/" + prefix + "-cli"
		pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "bin": map[string]string{"second": "bin/second.js"}, "payloads": payloads})
		p := filepath.Join(dist, "npm", prefix+"-launcher.tgz")
		WriteNpmTarball(t, p, map[string]string{"package.json": string(pj), "bin/second.js": fakeLauncher}, "bin/second.js")
		a, err := artifact.FromFile(dist, p, artifact.Artifact{Kind: artifact.KindLauncher, Name: name, Version: version})
		if err != nil {
			return nil, err
		}
		rel.Artifacts = append(rel.Artifacts, a)
		return rel, artifact.Write(dist, rel)
	}
}
