package natives

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/manifest"
	"github.com/second-inc/second-release/internal/release/binarycheck"
	"github.com/second-inc/second-release/internal/release/natives/bottle"
	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport"
)

// TestLinuxBottlesRelocated builds Homebrew-shaped Linux bottles from the
// host's real redis-server and OpenSSL libraries (placeholder interpreter
// and RUNPATH put in), materializes them, and shows the result starts with
// an empty environment and loads OpenSSL from the runtime's lib/.
func TestLinuxBottlesRelocated(t *testing.T) {
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("needs a Linux amd64/arm64 host (runs its own redis-server)")
	}
	redisBin := testsupport.Tool(t, "redis-server")
	libssl := testsupport.SystemLibrary(t, redisBin, "libssl.so.3")
	libcrypto := testsupport.SystemLibrary(t, redisBin, "libcrypto.so.3")

	stage := t.TempDir()
	testsupport.BottleELF(t, redisBin, filepath.Join(stage, "redis-server"), bottle.RedisRunpath)
	testsupport.BottleELF(t, libssl, filepath.Join(stage, "libssl.so.3"), bottle.Prefix+"/lib")
	testsupport.BottleELF(t, libcrypto, filepath.Join(stage, "libcrypto.so.3"), bottle.Prefix+"/lib")
	if out, err := exec.Command(filepath.Join(stage, "redis-server"), "--version").CombinedOutput(); err == nil {
		t.Fatalf("the bottled redis-server started before relocation:\n%s", out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(stage, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Everything the three files need besides OpenSSL is the host's to give.
	system := importedBesidesOpenSSL(t, redisBin, libssl, libcrypto)

	w := newWorld(t)
	// A mongod stand-in without placeholders: it must be left alone.
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skip("needs /bin/ls")
	}
	mongo := tgzOf(t, []member{{name: "mongodb-linux-x86_64-ubuntu2204-8.2.6/bin/mongod", body: string(ls), exec: true}})
	redis := tgzOf(t, []member{
		{name: "redis/8.6.2_1/bin/redis-server", body: read("redis-server"), exec: true},
		{name: "redis/8.6.2_1/bin/redis-cli", body: "cli", exec: true},
	})
	openssl := tgzOf(t, []member{
		{name: "openssl@3/3.6.1/lib/libssl.so.3", body: read("libssl.so.3")},
		{name: "openssl@3/3.6.1/lib/libcrypto.so.3", body: read("libcrypto.so.3")},
		{name: "openssl@3/3.6.1/lib/libssl.so", link: "libssl.so.3"},
	})
	ef, _ := elf.Open("/bin/ls")
	lsLibs, _ := ef.ImportedLibraries()
	ef.Close()
	l := &Lock{Schema: 1, Platform: host.ID, SystemLibraries: append(system, lsLibs...), Natives: []Native{
		{Name: "mongod", Version: "8.2.6", Source: w.serve("/linux/mongodb-linux-x86_64-ubuntu2204-8.2.6.tgz", mongo), SHA256: sum(mongo),
			Members: map[string]string{"mongodb-linux-x86_64-ubuntu2204-8.2.6/bin/mongod": "bin/mongod"}, PinSource: "test"},
		{Name: "redis", Version: "8.6.2_1", Source: w.serve("/redis.tar.gz", redis), SHA256: sum(redis),
			Members: map[string]string{"redis/8.6.2_1/bin/redis-server": "bin/redis-server"}, PinSource: "test"},
		{Name: "openssl", Version: "3.6.1", Source: w.serve("/openssl.tar.gz", openssl), SHA256: sum(openssl),
			Members: map[string]string{
				"openssl@3/3.6.1/lib/libssl.so.3":    "lib/libssl.so.3",
				"openssl@3/3.6.1/lib/libcrypto.so.3": "lib/libcrypto.so.3",
			}, PinSource: "test"},
	}}
	rt := filepath.Join(t.TempDir(), "runtime")
	got, err := Materialize(context.Background(), Options{LockPath: writeLock(t, l), Platform: host, RuntimeDir: rt,
		CacheDir: t.TempDir(), Mirror: "-", Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}

	loader := binarycheck.StandardInterpreter(host.GOARCH)
	wantRedis := []manifest.Rewrite{
		{File: "dist/runtime/bin/redis-server", Field: "PT_INTERP", Old: bottle.Interpreter, New: loader},
		{File: "dist/runtime/bin/redis-server", Field: "DT_RUNPATH", Old: bottle.RedisRunpath, New: "$ORIGIN/../lib"},
	}
	wantSSL := []manifest.Rewrite{
		{File: "dist/runtime/lib/libcrypto.so.3", Field: "DT_RUNPATH", Old: bottle.Prefix + "/lib", New: "$ORIGIN"},
		{File: "dist/runtime/lib/libssl.so.3", Field: "DT_RUNPATH", Old: bottle.Prefix + "/lib", New: "$ORIGIN"},
	}
	if !slices.Equal(got["redis"].Rewrites, wantRedis) || !slices.Equal(got["openssl"].Rewrites, wantSSL) || len(got["mongod"].Rewrites) != 0 {
		t.Fatalf("manifest rewrites:\nredis   %+v\nopenssl %+v\nmongod  %+v", got["redis"].Rewrites, got["openssl"].Rewrites, got["mongod"].Rewrites)
	}

	server := filepath.Join(rt, "bin", "redis-server")
	cmd := exec.Command("env", "-i", server, "--version")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Redis server v=") {
		t.Fatalf("env -i %s --version: %v\n%s", server, err, out)
	}

	// ld.so resolves OpenSSL from the runtime's lib/ through $ORIGIN
	// (paths appear as runtime/bin/../lib/...; compare them cleaned).
	checkLddResolvesFromRuntime(t, server, rt)

	// And a running server has the runtime's libssl mapped, not the host's.
	checkRunningMapsRuntimeSSL(t, server, rt)
}

// importedBesidesOpenSSL lists the libraries the files import other than
// OpenSSL's, each once, in order.
func importedBesidesOpenSSL(t *testing.T, files ...string) []string {
	t.Helper()
	var system []string
	for _, f := range files {
		ef, err := elf.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := ef.ImportedLibraries()
		ef.Close()
		for _, l := range libs {
			if l != "libssl.so.3" && l != "libcrypto.so.3" && !slices.Contains(system, l) {
				system = append(system, l)
			}
		}
	}
	return system
}

// checkLddResolvesFromRuntime checks ld.so resolves OpenSSL from the
// runtime's lib/ through $ORIGIN (paths appear as runtime/bin/../lib/...;
// compared cleaned).
func checkLddResolvesFromRuntime(t *testing.T, server, rt string) {
	t.Helper()
	ldd, err := exec.Command("ldd", server).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	resolved := map[string]string{}
	for _, line := range strings.Split(string(ldd), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "=>" {
			resolved[f[0]] = filepath.Clean(f[2])
		}
	}
	for _, so := range []string{"libssl.so.3", "libcrypto.so.3"} {
		if want := filepath.Join(rt, "lib", so); resolved[so] != want {
			t.Errorf("ldd resolves %s to %q, want %s:\n%s", so, resolved[so], want, ldd)
		}
	}
}

// checkRunningMapsRuntimeSSL starts the server with an empty environment and
// checks it has the runtime's libssl mapped, not the host's.
func checkRunningMapsRuntimeSSL(t *testing.T, server, rt string) {
	t.Helper()
	data := t.TempDir()
	srv := exec.Command(server, "--port", strconv.Itoa(testsupport.FreePort(t)), "--bind", "127.0.0.1",
		"--dir", data, "--save", "", "--appendonly", "no", "--daemonize", "no")
	srv.Env = []string{}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	mapsFile := "/proc/" + strconv.Itoa(srv.Process.Pid) + "/maps"
	var mapped []string
	for deadline := time.Now().Add(10 * time.Second); len(mapped) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(mapsFile)
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 6 && strings.HasSuffix(f[5], "/libssl.so.3") && !slices.Contains(mapped, filepath.Clean(f[5])) {
				mapped = append(mapped, filepath.Clean(f[5]))
			}
		}
	}
	if want := filepath.Join(rt, "lib", "libssl.so.3"); len(mapped) != 1 || mapped[0] != want {
		t.Fatalf("redis-server (pid %d) maps libssl from %q, want only %s", srv.Process.Pid, mapped, want)
	}
}

// A keg already poured by brew carries Homebrew's Linux prefix instead of
// placeholders; it is relocated the same way, and files without either are
// left alone.
func TestRelocatePouredKeg(t *testing.T) {
	host, err := platform.Host()
	if err != nil || host.GOOS != "linux" {
		t.Skip("needs a Linux amd64/arm64 host")
	}
	patchelf := testsupport.Tool(t, "patchelf")
	rt := t.TempDir()
	bin := filepath.Join(rt, "bin", "redis-server")
	const poured = "/home/linuxbrew/.linuxbrew"
	testsupport.BottleELF(t, "/bin/ls", bin, strings.ReplaceAll(bottle.RedisRunpath, bottle.Prefix, poured))
	if out, err := exec.Command(patchelf, "--set-interpreter", poured+"/lib/ld.so", bin).CombinedOutput(); err != nil {
		t.Fatalf("patchelf: %v\n%s", err, out)
	}
	plain := filepath.Join(rt, "bin", "mongod")
	b, _ := os.ReadFile("/bin/ls")
	os.WriteFile(plain, b, 0o755)
	rw, err := RelocateELF(rt, host, []string{"bin/redis-server", "bin/mongod"})
	if err != nil {
		t.Fatal(err)
	}
	want := []manifest.Rewrite{
		{File: "dist/runtime/bin/redis-server", Field: "PT_INTERP", Old: poured + "/lib/ld.so", New: binarycheck.StandardInterpreter(host.GOARCH)},
		{File: "dist/runtime/bin/redis-server", Field: "DT_RUNPATH", Old: poured + "/opt/openssl@3/lib:" + poured + "/lib", New: "$ORIGIN/../lib"},
	}
	if !slices.Equal(rw, want) {
		t.Fatalf("rewrites: %+v", rw)
	}
	if after, _ := os.ReadFile(plain); !bytes.Equal(after, b) {
		t.Fatal("a file without Homebrew paths was changed")
	}
}
