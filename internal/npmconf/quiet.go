package npmconf

import "strings"

// quiet are the settings every npm we start runs with: no "new version of
// npm available" notice, no funding or audit summary. They go through the
// environment so the user's .npmrc is never edited.
var quiet = []string{"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"}

// Quiet returns a copy of env with npm's update notifier, funding and audit
// messages turned off, replacing any value env had for those settings (npm
// reads npm_config_* case-insensitively).
func Quiet(env []string) []string {
	out := make([]string, 0, len(env)+len(quiet))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !isQuietKey(k) {
			out = append(out, kv)
		}
	}
	return append(out, quiet...)
}

func isQuietKey(k string) bool {
	for _, q := range quiet {
		name, _, _ := strings.Cut(q, "=")
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
