package npmconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNerfDart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://registry.npmjs.org/", "//registry.npmjs.org/"},
		{"https://registry.npmjs.org", "//registry.npmjs.org/"},
		{"https://registry.npmjs.org:443/", "//registry.npmjs.org/"},
		{"http://127.0.0.1:4873/", "//127.0.0.1:4873/"},
		{"http://user:pw@127.0.0.1:4873/npm/?q=1#x", "//127.0.0.1:4873/npm/"},
		{"https://r.example/npm/@scope%2fpkg", "//r.example/npm/"},
		{"https://R.Example/a/b/pkg.tgz", "//r.example/a/b/"},
	} {
		got, err := NerfDart(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NerfDart(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := NerfDart("not a url"); err == nil {
		t.Error("NerfDart accepted a relative string")
	}
}

func TestLoadPrecedenceAndScopes(t *testing.T) {
	home := t.TempDir()
	proj := t.TempDir()
	write(t, filepath.Join(home, ".npmrc"), `
; user config
registry=https://user.example/
@second-inc:registry=http://127.0.0.1:4873
//127.0.0.1:4873/:_authToken=${MY_TOKEN}
//other.example/deep/:_authToken="quoted-token"
[section]
`)
	write(t, filepath.Join(proj, ".npmrc"), "registry=https://project.example/npm\n# comment\n")
	env := []string{"HOME=" + home, "MY_TOKEN=s3cr3t-token"}

	c, err := Load(Options{Env: env, ProjectDir: proj})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ pkg, want string }{
		{"left-pad", "https://project.example/npm/"},
		{"@second-inc/cli", "http://127.0.0.1:4873/"},
		{"@other/x", "https://project.example/npm/"},
	} {
		if got := c.RegistryFor(tc.pkg); got != tc.want {
			t.Errorf("RegistryFor(%q) = %q, want %q", tc.pkg, got, tc.want)
		}
	}
	for _, tc := range []struct {
		url, token string
		ok         bool
	}{
		{"http://127.0.0.1:4873/", "s3cr3t-token", true},
		{"http://127.0.0.1:4873/@second-inc%2fcli", "s3cr3t-token", true},
		{"http://127.0.0.1:4873/@second-inc/cli/-/cli-1.0.0.tgz", "s3cr3t-token", true},
		{"http://127.0.0.1:4874/", "", false},
		{"https://127.0.0.1:4873/", "s3cr3t-token", true}, // nerf darts ignore the scheme, as in npm
		{"https://other.example/deep/pkg", "quoted-token", true},
		{"https://other.example/deep/more/pkg", "quoted-token", true},
		{"https://other.example/shallow/pkg", "", false},
		{"https://project.example/npm/x", "", false},
	} {
		got, ok := c.AuthFor(tc.url)
		if got != tc.token || ok != tc.ok {
			t.Errorf("AuthFor(%q) = %q, %v; want %q, %v", tc.url, got, ok, tc.token, tc.ok)
		}
	}
	if len(c.Sources) != 2 {
		t.Errorf("Sources = %v, want both files", c.Sources)
	}

	// Environment beats both files, lower or upper case.
	for _, kv := range []string{"npm_config_registry=http://env.example", "NPM_CONFIG_REGISTRY=http://env.example"} {
		c, err := Load(Options{Env: append(env, kv), ProjectDir: proj})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RegistryFor("left-pad"); got != "http://env.example/" {
			t.Errorf("with %s: RegistryFor = %q", kv, got)
		}
	}
	c, err = Load(Options{Env: append(env, "npm_config_@second-inc:registry=http://scoped.env/", "npm_config_//scoped.env/:_authToken=envtok"), ProjectDir: proj})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RegistryFor("@second-inc/cli"); got != "http://scoped.env/" {
		t.Errorf("scoped registry from env = %q", got)
	}
	if tok, _ := c.AuthFor("http://scoped.env/@second-inc%2fcli"); tok != "envtok" {
		t.Errorf("auth from env = %q", tok)
	}
}

func TestUserConfigOverrideAndDefaults(t *testing.T) {
	dir := t.TempDir()
	alt := filepath.Join(dir, "alt-npmrc")
	write(t, alt, "registry=http://alt.example/\n")
	write(t, filepath.Join(dir, ".npmrc"), "registry=http://ignored.example/\n")
	c, err := Load(Options{Env: []string{"HOME=" + dir, "NPM_CONFIG_USERCONFIG=" + alt}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Registry(); got != "http://alt.example/" {
		t.Errorf("Registry with NPM_CONFIG_USERCONFIG = %q", got)
	}
	c, err = Load(Options{Env: []string{"HOME=" + t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RegistryFor("@second-inc/cli"); got != DefaultRegistry {
		t.Errorf("default registry = %q", got)
	}
	if _, ok := c.AuthFor(DefaultRegistry); ok {
		t.Error("empty config produced credentials")
	}
}

func TestUnreadableConfigIsAnError(t *testing.T) {
	// A directory in the file's place fails for root too (a 0000 file would not).
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".npmrc"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Env: []string{"HOME=" + home}})
	if err == nil || !strings.Contains(err.Error(), ".npmrc") {
		t.Fatalf("Load with a directory as .npmrc: err = %v, want one naming the file", err)
	}
}

func TestBasicAuth(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".npmrc"), "//r.example/:username=alice\n//r.example/:_password="+encodeBase64("pw")+"\n//s.example/:_auth=YWxpY2U6cHc=\n")
	c, err := Load(Options{Env: []string{"HOME=" + home}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://r.example/pkg", "https://s.example/pkg"} {
		h, ok := c.AuthHeader(u)
		if !ok || h != "Basic YWxpY2U6cHc=" {
			t.Errorf("AuthHeader(%q) = %q, %v", u, h, ok)
		}
		if _, ok := c.AuthFor(u); ok {
			t.Errorf("AuthFor(%q) reported a bearer token for basic credentials", u)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": ""}
	for _, tc := range []struct{ in, want string }{
		{"${A}", "x"},
		{"pre-${A}-post", "pre-x-post"},
		{"${MISSING}", "${MISSING}"},
		{"${MISSING?}", ""},
		{"${EMPTY}", ""},
		{`\${A}`, "${A}"},
		{`\\${A}`, `\x`},
		{"${A", "${A"},
		{"$A", "$A"},
	} {
		if got := expandEnv(tc.in, env); got != tc.want {
			t.Errorf("expandEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	home := t.TempDir()
	write(t, filepath.Join(home, ".npmrc"), "//r.example/:_authToken=npm_abcdef123456\n")
	c, err := Load(Options{Env: []string{"HOME=" + home}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		"GET https://bob:hunter2@r.example/pkg failed",
		"token npm_abcdef123456 rejected",
		"//x.example/:_authToken=zzz-top-secret",
	} {
		got := c.Redact(in)
		for _, secret := range []string{"hunter2", "npm_abcdef123456", "zzz-top-secret", "bob:"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) = %q still contains %q", in, got, secret)
			}
		}
	}
}

func TestLocalPrefix(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "proj", "package.json"), "{}")
	deep := filepath.Join(root, "proj", "src", "deep")
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := LocalPrefix(deep); got != filepath.Join(root, "proj") {
		t.Errorf("LocalPrefix(%s) = %s", deep, got)
	}
	lone := t.TempDir()
	if got := LocalPrefix(lone); got != lone {
		t.Errorf("LocalPrefix without a project = %s, want %s", got, lone)
	}
}

func TestQuiet(t *testing.T) {
	in := []string{"PATH=/bin", "NPM_CONFIG_UPDATE_NOTIFIER=true", "npm_config_fund=true", "npm_config_registry=http://r/"}
	got := Quiet(in)
	want := []string{"PATH=/bin", "npm_config_registry=http://r/", "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Quiet(%q) = %q, want %q", in, got, want)
	}
	if in[1] != "NPM_CONFIG_UPDATE_NOTIFIER=true" {
		t.Error("Quiet changed its argument")
	}
}
