package redisconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/testsupport"
)

func TestRenderRefusesWeakConfigs(t *testing.T) {
	ok := Config{Port: 6380, Dir: "/d", AppPassword: "a", AdminPassword: "b"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"no port", func(c *Config) { c.Port = 0 }, "invalid port"},
		{"no dir", func(c *Config) { c.Dir = "" }, "data directory"},
		{"no app password", func(c *Config) { c.AppPassword = "" }, "passwords are required"},
		{"same passwords", func(c *Config) { c.AdminPassword = c.AppPassword }, "must differ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			if _, err := Render(c); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Render = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigFileShapeAndNoClearPasswords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space", "redis")
	path := filepath.Join(t.TempDir(), "redis.conf")
	if err := Write(path, Config{Port: 6390, Dir: dir, AppPassword: "app-secret-1", AdminPassword: "admin-secret-2"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bind 127.0.0.1", "port 6390", `dir "` + dir + `"`, "appendonly yes", "protected-mode yes", "daemonize no"} {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("redis.conf lacks %q:\n%s", line, b)
		}
	}
	if strings.Contains(string(b), "app-secret-1") || strings.Contains(string(b), "admin-secret-2") {
		t.Errorf("redis.conf holds a password in clear:\n%s", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("redis.conf mode %v, want 0600", st.Mode().Perm())
	}
}

// TestRealRedisEnforcesUsers runs the Debian redis-server with the
// generated file: nobody gets in without a password, the app's user works
// with data but not CONFIG/DEBUG/MODULE/SHUTDOWN, the admin can do both.
func TestRealRedisEnforcesUsers(t *testing.T) {
	bin := testsupport.Tool(t, "redis-server")
	dir := t.TempDir()
	port := testsupport.FreePort(t)
	conf := filepath.Join(dir, "redis.conf")
	const app, admin = "app-pw-x", "admin-pw-y"
	if err := Write(conf, Config{Port: port, Dir: dir, AppPassword: app, AdminPassword: admin}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx := t.Context()
	if err := probe.Wait(ctx, probe.Redis{Addr: addr, Username: AdminUser, Password: admin}, 10*time.Millisecond); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("%v\n%s", err, b)
	}

	do := func(user, pw string, args ...string) (string, error) {
		cmds := [][]string{}
		if pw != "" {
			if user == "" {
				cmds = append(cmds, []string{"AUTH", pw})
			} else {
				cmds = append(cmds, []string{"AUTH", user, pw})
			}
		}
		return testsupport.RedisPipeline(addr, append(cmds, args)...)
	}
	tests := []struct {
		name     string
		user, pw string
		args     []string
		wantErr  string // "" means success
	}{
		{"anonymous get", "", "", []string{"GET", "k"}, "NOAUTH"},
		{"anonymous shutdown", "", "", []string{"SHUTDOWN", "NOSAVE"}, "NOAUTH"},
		{"wrong password", "", "nope", []string{"GET", "k"}, "WRONGPASS"},
		{"app set", "", app, []string{"SET", "k", "v"}, ""},
		{"app get", "", app, []string{"GET", "k"}, ""},
		{"app publish", "", app, []string{"PUBLISH", "chan", "x"}, ""},
		{"app config set", "", app, []string{"CONFIG", "SET", "appendonly", "no"}, "NOPERM"},
		{"app config get", "", app, []string{"CONFIG", "GET", "dir"}, "NOPERM"},
		// Redis 7 also disables DEBUG by default; either refusal will do.
		{"app debug", "", app, []string{"DEBUG", "SLEEP", "0"}, "NOPERM|DEBUG command not allowed"},
		{"app module", "", app, []string{"MODULE", "LIST"}, "NOPERM"},
		{"app acl setuser", "", app, []string{"ACL", "SETUSER", "default", "nopass"}, "NOPERM"},
		{"app shutdown", "", app, []string{"SHUTDOWN", "NOSAVE"}, "NOPERM"},
		{"admin as default user", "", admin, []string{"GET", "k"}, "WRONGPASS"},
		{"admin config get", AdminUser, admin, []string{"CONFIG", "GET", "appendonly"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := do(tc.user, tc.pw, tc.args...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("%v: %v", tc.args, err)
			case tc.wantErr != "" && (err == nil || !containsAny(err.Error(), strings.Split(tc.wantErr, "|"))):
				t.Errorf("%v = %v, want %s", tc.args, err, tc.wantErr)
			}
		})
	}
	if _, err := do(AdminUser, admin, "SHUTDOWN"); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("admin shutdown: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server still running after the admin's SHUTDOWN")
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
