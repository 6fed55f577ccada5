// Package npmconf reads the user's npm configuration the way npm itself does
// for the settings that decide where packages come from and how to
// authenticate: the user and project .npmrc files and npm_config_* variables,
// scoped registries and nerf-darted auth keys. It never writes configuration.
package npmconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DefaultRegistry is npm's registry when nothing else is configured.
const DefaultRegistry = "https://registry.npmjs.org/"

// Options says where to look. Zero values mean "as npm would": Env defaults
// to os.Environ(), Home to $HOME.
type Options struct {
	// Env is the environment as KEY=VALUE pairs; nil means os.Environ().
	Env []string
	// Home is the user's home dir holding .npmrc; empty means $HOME from Env.
	Home string
	// ProjectDir holds the project .npmrc; empty means no project config.
	ProjectDir string
}

// Config is the merged configuration: later sources override earlier ones in
// npm's order (user < project < environment).
type Config struct {
	values map[string]string
	// Sources lists the files that were read, lowest priority first.
	Sources []string
}

// Load reads ~/.npmrc (or $NPM_CONFIG_USERCONFIG), the project .npmrc and
// npm_config_* variables. A missing file is not an error; an unreadable one is.
func Load(opts Options) (*Config, error) {
	env := envMap(opts.Env)
	c := &Config{values: map[string]string{}}

	userFile := ""
	if v := lookupEnvConfig(env, "userconfig"); v != "" {
		userFile = v
	} else {
		h := opts.Home
		if h == "" {
			h = env["HOME"]
		}
		if h != "" {
			userFile = filepath.Join(h, ".npmrc")
		}
	}
	files := []string{}
	if userFile != "" {
		files = append(files, userFile)
	}
	if opts.ProjectDir != "" {
		pf := filepath.Join(opts.ProjectDir, ".npmrc")
		if pf != userFile { // npm skips the project file when it is the user file
			files = append(files, pf)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read npm config %s: %w", f, err)
		}
		for k, v := range parseIni(data, env) {
			c.values[k] = v
		}
		c.Sources = append(c.Sources, f)
	}
	for k, v := range envConfig(env) {
		c.values[k] = v
	}
	return c, nil
}

// Get returns a raw setting (already env-expanded) and whether it is set.
func (c *Config) Get(key string) (string, bool) {
	v, ok := c.values[key]
	return v, ok
}

// Registry is the default registry URL, always ending in "/".
func (c *Config) Registry() string {
	if v, ok := c.values["registry"]; ok && v != "" {
		return withSlash(v)
	}
	return DefaultRegistry
}

// RegistryFor is the registry npm uses for the package: @scope:registry for
// scoped names when set, else the default registry.
func (c *Config) RegistryFor(pkgName string) string {
	if strings.HasPrefix(pkgName, "@") {
		if i := strings.IndexByte(pkgName, '/'); i > 0 {
			if v, ok := c.values[pkgName[:i]+":registry"]; ok && v != "" {
				return withSlash(v)
			}
		}
	}
	return c.Registry()
}

// AuthFor returns the bearer token (_authToken) npm would send to rawURL. Like
// npm it matches the URL's nerf dart and then each parent path; a URL on the
// default registry's host without its own key falls back to the registry's.
func (c *Config) AuthFor(rawURL string) (token string, ok bool) {
	a := c.authFor(rawURL, true)
	if a.token == "" {
		return "", false
	}
	return a.token, true
}

// AuthHeader returns the Authorization header value npm would send to rawURL:
// "Bearer <token>" for _authToken, "Basic <b64>" for _auth or
// username/_password; ok is false when no credentials apply.
func (c *Config) AuthHeader(rawURL string) (string, bool) {
	a := c.authFor(rawURL, true)
	switch {
	case a.token != "":
		return "Bearer " + a.token, true
	case a.basic != "":
		return "Basic " + a.basic, true
	}
	return "", false
}

type auth struct{ token, basic string }

func (c *Config) authFor(rawURL string, fallback bool) auth {
	key, err := NerfDart(rawURL)
	if err != nil {
		return auth{}
	}
	for len(key) > len("//") {
		if a, ok := c.authAt(key); ok {
			return a
		}
		key = trimLastSegment(key)
	}
	if fallback {
		// npm: no key for this URL, but the configured registry on the same
		// host has one (tarballs served from another path).
		for _, reg := range c.registries() {
			if reg != rawURL && sameHost(reg, rawURL) {
				if a := c.authFor(reg, false); a != (auth{}) {
					return a
				}
			}
		}
	}
	return auth{}
}

func (c *Config) registries() []string {
	out := []string{c.Registry()}
	for k, v := range c.values {
		if strings.HasPrefix(k, "@") && strings.HasSuffix(k, ":registry") && v != "" {
			out = append(out, withSlash(v))
		}
	}
	return out
}

func (c *Config) authAt(key string) (auth, bool) {
	if t := c.values[key+":_authToken"]; t != "" {
		return auth{token: t}, true
	}
	if b := c.values[key+":_auth"]; b != "" {
		return auth{basic: b}, true
	}
	u, p := c.values[key+":username"], c.values[key+":_password"]
	if u != "" && p != "" {
		pw, err := decodeBase64(p)
		if err == nil {
			return auth{basic: encodeBase64(u + ":" + pw)}, true
		}
	}
	return auth{}, false
}

// Secrets lists every credential value in the config, for redaction.
func (c *Config) Secrets() []string {
	var out []string
	for k, v := range c.values {
		if v == "" {
			continue
		}
		if strings.HasSuffix(k, ":_authToken") || strings.HasSuffix(k, ":_auth") || strings.HasSuffix(k, ":_password") {
			out = append(out, v)
		}
	}
	return out
}

// Redact removes credentials from s: every configured secret value and the
// user-info part of URLs. Use it on anything derived from config or URLs
// before it reaches a log or an error.
func (c *Config) Redact(s string) string {
	if c != nil {
		for _, sec := range c.Secrets() {
			if len(sec) >= 4 {
				s = strings.ReplaceAll(s, sec, "***")
			}
		}
	}
	return Redact(s)
}

// NerfDart turns a URL into npm's credential key prefix: "//host[:port]/dir/"
// without scheme, user-info, query or fragment, the path cut back to its last "/".
func NerfDart(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("not an absolute URL: %q", Redact(rawURL))
	}
	// WHATWG URLs (which npm uses) drop the scheme's default port.
	host := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case u.Scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	p = p[:strings.LastIndexByte(p, '/')+1]
	return "//" + host + p, nil
}

func trimLastSegment(key string) string {
	// "//h/a/b/" -> "//h/a/" ; "//h/" -> "//h" ; "//h" -> "//"
	if strings.HasSuffix(key, "/") {
		key = key[:len(key)-1]
		if i := strings.LastIndexByte(key, '/'); i >= 2 {
			return key[:i+1]
		}
		return key
	}
	if i := strings.LastIndexByte(key, '/'); i >= 1 {
		return key[:i+1]
	}
	return "//"
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host != "" && strings.EqualFold(ua.Host, ub.Host)
}

func withSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

func envMap(env []string) map[string]string {
	if env == nil {
		env = os.Environ()
	}
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if i := strings.IndexByte(kv, '='); i > 0 {
			m[kv[:i]] = kv[i+1:]
		}
	}
	return m
}

// envConfig maps npm_config_<key> (any case) to config keys the way npm does:
// keys not starting with "//" are lower-cased with "_" turned into "-"
// (except a leading one, so npm_config__authToken stays _authToken-like).
func envConfig(env map[string]string) map[string]string {
	out := map[string]string{}
	const prefix = "npm_config_"
	// Lower-case names win over upper-case ones when both are set, as in npm
	// (process.env iteration puts them in insertion order; be deterministic).
	for _, pass := range []bool{false, true} {
		for k, v := range env {
			if len(k) <= len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) || v == "" {
				continue
			}
			if (k[:len(prefix)] == prefix) != pass {
				continue
			}
			key := k[len(prefix):]
			if !strings.HasPrefix(key, "//") {
				key = strings.ToLower(key[:1]) + strings.ToLower(strings.ReplaceAll(key[1:], "_", "-"))
			}
			out[key] = v
		}
	}
	return out
}

func lookupEnvConfig(env map[string]string, key string) string {
	if v := env["npm_config_"+key]; v != "" {
		return v
	}
	return env["NPM_CONFIG_"+strings.ToUpper(key)]
}

// parseIni reads npm's ini dialect: key=value lines, ";" and "#" comments,
// [sections] ignored, quoted values, "key[]" arrays (last value kept), and
// ${VAR} expansion in keys and values.
func parseIni(data []byte, env map[string]string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' || line[0] == '#' || line[0] == '[' {
			continue
		}
		i := strings.IndexByte(line, '=')
		var k, v string
		if i < 0 {
			k, v = line, "true"
		} else {
			k, v = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		k = strings.TrimSuffix(unquote(k), "[]")
		v = unquote(v)
		out[expandEnv(k, env)] = expandEnv(v, env)
	}
	return out
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// expandEnv replaces ${NAME} with the variable's value as npm does: an unset
// variable stays literal, ${NAME?} becomes empty when unset, and each pair of
// backslashes before "$" is one literal backslash, an odd one escapes the "$".
func expandEnv(s string, env map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		j += i
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		end += j
		name := s[j+2 : end]
		optional := strings.HasSuffix(name, "?")
		name = strings.TrimSuffix(name, "?")
		// Count backslashes immediately before "$".
		bs := 0
		for k := j - 1; k >= i && s[k] == '\\'; k-- {
			bs++
		}
		b.WriteString(s[i : j-bs])
		if name == "" || strings.ContainsAny(name, "${}?") {
			b.WriteString(s[j-bs : end+1])
			i = end + 1
			continue
		}
		b.WriteString(strings.Repeat(`\`, bs/2))
		if bs%2 == 1 {
			b.WriteString(s[j : end+1]) // escaped: literal
		} else if v, ok := env[name]; ok {
			b.WriteString(v)
		} else if optional {
			// empty
		} else {
			b.WriteString(s[j : end+1])
		}
		i = end + 1
	}
	return b.String()
}

// LocalPrefix is npm's project directory for cwd: the nearest directory at
// or above it holding package.json or node_modules, else cwd itself.
func LocalPrefix(cwd string) string {
	for dir := cwd; ; {
		for _, marker := range []string{"package.json", "node_modules"} {
			if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return cwd
		}
		dir = parent
	}
}
