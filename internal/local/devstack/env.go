package devstack

import (
	"sort"
	"strconv"
	"strings"

	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/stack"
)

// envInput is what the apps' environment is made of.
type envInput struct {
	ID                  string
	URL                 string // the stack's public URL (proxy or localhost)
	WebPort, WorkerPort int
	Infra               stack.EnvInput // builds MONGODB_URI and REDIS_URL
	Secrets             secrets.Set
	WorkspacesDir       string
	ProxyHost           string // <id>.second.localhost, "" without the proxy
	DisableTelemetry    bool
	Environ             []string // the developer's environment
}

// devOrigins are the host names Next.js dev must accept its own resources
// (HMR, chunks) from besides localhost: the proxy's names, the public
// URL's host and the developer's SECOND_DEV_ALLOWED_ORIGINS.
func (in envInput) devOrigins(extra string) string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	if in.ProxyHost != "" {
		add(in.ProxyHost)
		add("*.second.localhost")
	}
	if u := strings.TrimPrefix(in.URL, "http://"); u != "" {
		host, _, _ := strings.Cut(u, ":")
		add(host)
	}
	for _, f := range strings.FieldsFunc(extra, func(r rune) bool { return r == ',' || r == ' ' }) {
		add(f)
	}
	return strings.Join(out, ",")
}

// webEnv is the Next.js dev server's environment: the developer's own
// (dev tools read it: auth for the agent CLIs, proxies) with the stack's
// settings on top.
func webEnv(in envInput) []string {
	m := in.base()
	webURL := "http://127.0.0.1:" + strconv.Itoa(in.WebPort)
	for k, v := range map[string]string{
		"PORT":                          strconv.Itoa(in.WebPort),
		"HOSTNAME":                      "127.0.0.1",
		"SECOND_AUTH_MODE":              "none",
		"SECOND_NO_AUTH_SESSION_SECRET": in.Secrets.SessionSecret,
		"INTERNAL_API_TOKEN":            in.Secrets.InternalAPIToken,
		"MONGODB_URI":                   in.Infra.MongoURI(),
		"REDIS_URL":                     in.Infra.RedisURL(),
		"SECOND_PUBLIC_URL":             in.URL,
		"WEB_URL":                       webURL,
		"WORKER_URL":                    "http://127.0.0.1:" + strconv.Itoa(in.WorkerPort),
		"TOOL_EXECUTE_URL":              webURL + "/api/internal/tool-execute",
		"SECOND_DEV_ALLOWED_ORIGINS":    in.devOrigins(m["SECOND_DEV_ALLOWED_ORIGINS"]),
		"SECOND_DEV_ID":                 in.ID,
	} {
		m[k] = v
	}
	return render(m)
}

// workerEnv is the worker's environment, on the same terms as webEnv.
func workerEnv(in envInput) []string {
	m := in.base()
	webURL := "http://127.0.0.1:" + strconv.Itoa(in.WebPort)
	for k, v := range map[string]string{
		"PORT":               strconv.Itoa(in.WorkerPort),
		"HOST":               "127.0.0.1",
		"HOSTNAME":           "127.0.0.1",
		"INTERNAL_API_TOKEN": in.Secrets.InternalAPIToken,
		"WEB_URL":            webURL,
		"TOOL_EXECUTE_URL":   webURL + "/api/internal/tool-execute",
		"WORKSPACES_DIR":     in.WorkspacesDir,
		"MONGODB_URI":        in.Infra.MongoURI(),
		"REDIS_URL":          in.Infra.RedisURL(),
		"SECOND_DEV_ID":      in.ID,
	} {
		m[k] = v
	}
	return render(m)
}

// base is the developer's environment, minus what would point the apps at
// another stack, plus the telemetry-off flags when asked.
func (in envInput) base() map[string]string {
	m := map[string]string{}
	for _, kv := range in.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	// The runtime's own variables belong to `second start`, not to a dev stack.
	for k := range m {
		if strings.HasPrefix(k, "SECOND_LOCAL_") || strings.HasPrefix(k, "SECOND_RELEASE_") {
			delete(m, k)
		}
	}
	if in.DisableTelemetry {
		m["SECOND_POSTHOG_DISABLED"] = "1"
		m["SECOND_TELEMETRY_DISABLED"] = "1"
		m["NEXT_TELEMETRY_DISABLED"] = "1"
	}
	return m
}

func render(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}
