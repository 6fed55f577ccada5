package stack

import (
	"fmt"

	"github.com/second-inc/second-release/internal/local/mongoready"
	"sort"
	"strconv"
	"strings"
)

// EnvInput is everything the children's environment is made of.
type EnvInput struct {
	Home                        string
	WebPort, WorkerPort         int
	MongoPort, RedisPort        int
	MongoPassword               string // the app's user "second"
	RedisPassword               string // the app's (default) Redis user
	InternalAPIToken            string
	SessionSecret               string
	ServerActionsKey            string // per-install Next.js server-actions key
	ControlURL, ControlToken    string // empty when no control server runs
	ReleaseVersion, PackageName string
	WorkspacesDir               string
	DisableTelemetry            bool
	// Environ is the user's environment (os.Environ form): only the system
	// basics and the telemetry pass-through variables are taken from it.
	Environ []string
}

// systemEnv reports the user's variables every node child still needs to
// find its way around the machine (temp dir, locale, proxies, extra CAs).
func systemEnv(key string) bool {
	switch key {
	case "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR":
		return true
	}
	return false
}

// passThrough reports whether the user's variable reaches web and worker as
// is: their own PostHog and Sentry settings.
func passThrough(key string) bool {
	return strings.HasPrefix(key, "SECOND_POSTHOG_") || strings.HasPrefix(key, "SECOND_SENTRY_") || key == "NEXT_PUBLIC_SENTRY_DSN"
}

// URLs derived from the ports.
func (in EnvInput) webURL() string    { return "http://127.0.0.1:" + strconv.Itoa(in.WebPort) }
func (in EnvInput) publicURL() string { return "http://localhost:" + strconv.Itoa(in.WebPort) }

// MongoURI is the app's connection string for the mongod on MongoPort.
func (in EnvInput) MongoURI() string { return MongoURI(in.MongoPort, in.MongoPassword) }

// RedisURL is the app's connection string for the redis-server on RedisPort.
func (in EnvInput) RedisURL() string { return RedisURL(in.RedisPort, in.RedisPassword) }

// MongoURI is the app's connection string: user "second" of the admin
// database, the replica set, a direct connection. The password is URL-safe
// (secrets), so it goes in as is; empty means no credentials.
func MongoURI(port int, password string) string {
	cred, q := "", "directConnection=true&replicaSet="+mongoready.DefaultReplSet
	if password != "" {
		cred, q = mongoready.AppUser+":"+password+"@", "authSource=admin&"+q
	}
	return fmt.Sprintf("mongodb://%s127.0.0.1:%d/%s?%s", cred, port, mongoready.AppDB, q)
}

// RedisURL is the app's Redis URL: the default user's password only.
func RedisURL(port int, password string) string {
	cred := ""
	if password != "" {
		cred = ":" + password + "@"
	}
	return "redis://" + cred + "127.0.0.1:" + strconv.Itoa(port)
}

// WebEnv is the web server's complete environment; nothing else of the
// user's environment reaches it.
func WebEnv(in EnvInput) []string {
	m := in.base()
	set := map[string]string{
		"NODE_ENV":                           "production",
		"NEXT_TELEMETRY_DISABLED":            "1",
		"HOSTNAME":                           "127.0.0.1",
		"PORT":                               strconv.Itoa(in.WebPort),
		"SECOND_AUTH_MODE":                   "none",
		"SECOND_NO_AUTH_SESSION_SECRET":      in.SessionSecret,
		"INTERNAL_API_TOKEN":                 in.InternalAPIToken,
		"NEXT_SERVER_ACTIONS_ENCRYPTION_KEY": in.ServerActionsKey,
		"MONGODB_URI":                        in.MongoURI(),
		"REDIS_URL":                          in.RedisURL(),
		"SECOND_PUBLIC_URL":                  in.publicURL(),
		"WEB_URL":                            in.webURL(),
		"WORKER_URL":                         "http://127.0.0.1:" + strconv.Itoa(in.WorkerPort),
		"TOOL_EXECUTE_URL":                   in.webURL() + "/api/internal/tool-execute",
		"SECOND_LOCAL_INSTALL":               "1",
		"SECOND_RELEASE_RUNTIME":             "native",
		"SECOND_RELEASE_VERSION":             in.ReleaseVersion,
		"SECOND_RELEASE_PACKAGE":             in.PackageName,
		"SECOND_LOCAL_CLI_URL":               in.ControlURL,
		"SECOND_LOCAL_CLI_TOKEN":             in.ControlToken,
	}
	for k, v := range set {
		m[k] = v
	}
	return render(m)
}

// WorkerEnv is the worker's complete environment; nothing else of the
// user's environment reaches it.
func WorkerEnv(in EnvInput) []string {
	m := in.base()
	set := map[string]string{
		"PORT":               strconv.Itoa(in.WorkerPort),
		"HOST":               "127.0.0.1",
		"HOSTNAME":           "127.0.0.1",
		"INTERNAL_API_TOKEN": in.InternalAPIToken,
		"WEB_URL":            in.webURL(),
		"TOOL_EXECUTE_URL":   in.webURL() + "/api/internal/tool-execute",
		"WORKSPACES_DIR":     in.WorkspacesDir,
		"MONGODB_URI":        in.MongoURI(),
		"REDIS_URL":          in.RedisURL(),
	}
	for k, v := range set {
		m[k] = v
	}
	return render(m)
}

// base is what both node children share: system basics, the user's
// telemetry settings, and the telemetry-off flags when asked.
func (in EnvInput) base() map[string]string {
	m := map[string]string{}
	for _, kv := range in.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if systemEnv(k) || passThrough(k) {
			m[k] = v
		}
	}
	if in.DisableTelemetry {
		m["SECOND_POSTHOG_DISABLED"] = "1"
		m["SECOND_TELEMETRY_DISABLED"] = "1"
	}
	return m
}

// render sorts for a stable, diffable environment; empty values are left
// out so an absent control server does not look like an empty URL.
func render(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v == "" {
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// TelemetryDisabled reports whether the user's environment already asks
// for no telemetry (their own flag or the DO_NOT_TRACK convention).
func TelemetryDisabled(getenv func(string) string) bool {
	for _, k := range []string{"SECOND_TELEMETRY_DISABLED", "SECOND_POSTHOG_DISABLED", "DO_NOT_TRACK"} {
		if v := strings.ToLower(getenv(k)); v == "1" || v == "true" {
			return true
		}
	}
	return false
}
