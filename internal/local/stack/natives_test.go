package stack

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindNativesOrder(t *testing.T) {
	onPath := func(name string) (string, error) {
		if name == "mongod" || name == "redis-server" {
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}
	nothingOnPath := func(string) (string, error) { return "", errors.New("not found") }
	env := t.TempDir()
	touch(t, filepath.Join(env, "mongod"), 0o755)
	touch(t, filepath.Join(env, "redis-server"), 0o755)
	envs := map[string]string{"SECOND_MONGOD": filepath.Join(env, "mongod"), "SECOND_REDIS_SERVER": filepath.Join(env, "redis-server")}

	t.Run("payload around the executable wins over env and PATH", func(t *testing.T) {
		root := fakePayload(t)
		p, err := FindNatives(NativesOptions{Executable: filepath.Join(root, "bin", "second"), Getenv: mapEnv(envs), LookPath: onPath})
		if err != nil {
			t.Fatal(err)
		}
		if p.Mongod != filepath.Join(root, "dist/runtime/bin/mongod") || p.RedisServer != filepath.Join(root, "dist/runtime/bin/redis-server") || p.LibDir != filepath.Join(root, "dist/runtime/lib") {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("an installed payload under the home", func(t *testing.T) {
		payloads := t.TempDir()
		inst := filepath.Join(payloads, "@second-inc+cli-local-linux-x64@1.2.3", "node_modules", "@second-inc", "cli-local-linux-x64")
		touch(t, filepath.Join(inst, "dist/runtime/bin/mongod"), 0o755)
		touch(t, filepath.Join(inst, "dist/runtime/bin/redis-server"), 0o755)
		p, err := FindNatives(NativesOptions{Executable: filepath.Join(t.TempDir(), "bin", "second"), PayloadsDir: payloads, Getenv: mapEnv(envs), LookPath: onPath})
		if err != nil {
			t.Fatal(err)
		}
		if p.Mongod != filepath.Join(inst, "dist/runtime/bin/mongod") {
			t.Errorf("mongod %q", p.Mongod)
		}
	})
	t.Run("env before PATH", func(t *testing.T) {
		p, err := FindNatives(NativesOptions{Executable: filepath.Join(t.TempDir(), "bin", "second"), Getenv: mapEnv(envs), LookPath: onPath})
		if err != nil {
			t.Fatal(err)
		}
		if p.Mongod != envs["SECOND_MONGOD"] || p.RedisServer != envs["SECOND_REDIS_SERVER"] || p.LibDir != "" {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("PATH last", func(t *testing.T) {
		p, err := FindNatives(NativesOptions{Executable: filepath.Join(t.TempDir(), "bin", "second"), Getenv: mapEnv(nil), LookPath: onPath})
		if err != nil {
			t.Fatal(err)
		}
		if p.Mongod != "/usr/bin/mongod" || p.RedisServer != "/usr/bin/redis-server" {
			t.Errorf("got %+v", p)
		}
	})
	t.Run("none names all three places", func(t *testing.T) {
		_, err := FindNatives(NativesOptions{Executable: filepath.Join(t.TempDir(), "bin", "second"), Getenv: mapEnv(nil), LookPath: nothingOnPath})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"mongod not found", "redis-server not found", "dist/runtime/bin", "SECOND_MONGOD", "SECOND_REDIS_SERVER", "PATH"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("a bad override is named", func(t *testing.T) {
		_, err := FindNatives(NativesOptions{Executable: filepath.Join(t.TempDir(), "bin", "second"),
			Getenv: mapEnv(map[string]string{"SECOND_MONGOD": "/nonexistent/mongod"}), LookPath: onPath})
		if err == nil || !strings.Contains(err.Error(), "SECOND_MONGOD=/nonexistent/mongod is not an executable") {
			t.Errorf("err = %v", err)
		}
	})
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
