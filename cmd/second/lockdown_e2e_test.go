package main

// The databases are locked: another local user gets nothing from Redis or
// MongoDB, the app's credentials cannot administer them, and a home written
// before access control existed upgrades in place with its data.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/second-inc/second-release/internal/local/mongoready"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/testsupport"
)

// mongoClientEnv turns the test binary into a one-shot MongoDB client (so
// it can run as another uid): SECOND_E2E_MONGO_CLIENT=<addr>, the command
// as JSON in SECOND_E2E_MONGO_CMD, the database in SECOND_E2E_MONGO_DB,
// optional SECOND_E2E_MONGO_USER/PASS. Exit 0 and "ok" when the command
// succeeded, else exit 1 and the error.
const mongoClientEnv = "SECOND_E2E_MONGO_CLIENT"

func mongoClientMain() int {
	o := options.Client().ApplyURI("mongodb://" + os.Getenv(mongoClientEnv) + "/?directConnection=true").
		SetServerSelectionTimeout(5 * time.Second)
	if u := os.Getenv("SECOND_E2E_MONGO_USER"); u != "" {
		o.SetAuth(options.Credential{AuthSource: "admin", Username: u, Password: os.Getenv("SECOND_E2E_MONGO_PASS")})
	}
	c, err := mongo.Connect(o)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	var cmd bson.D
	if err := bson.UnmarshalExtJSON([]byte(os.Getenv("SECOND_E2E_MONGO_CMD")), false, &cmd); err != nil {
		fmt.Println(err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Database(os.Getenv("SECOND_E2E_MONGO_DB")).RunCommand(ctx, cmd).Err(); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// asNobody runs name args as uid nobody; it skips unless we are root with setpriv.
func asNobody(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run commands as another uid (setpriv)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to run commands as another uid")
	}
	cmd := exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", name}, args...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// clientForNobody copies this test binary where uid nobody can run it.
func clientForNobody(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "second-e2e-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	copyFile(t, exe, bin, 0o755)
	return bin
}

func mongoCmd(t *testing.T, bin, addr, db, cmdJSON, user, pass string, nobody bool) (string, error) {
	t.Helper()
	env := []string{mongoClientEnv + "=" + addr, "SECOND_E2E_MONGO_CMD=" + cmdJSON, "SECOND_E2E_MONGO_DB=" + db,
		"SECOND_E2E_MONGO_USER=" + user, "SECOND_E2E_MONGO_PASS=" + pass}
	if nobody {
		return asNobody(t, env, bin)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAnotherUserCannotUseTheDatabases(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	redisCLI := testsupport.Tool(t, "redis-cli")
	client := clientForNobody(t)
	r := p.start(t, nil)
	st := p.status(t)
	redisPort := strconv.Itoa(service(st, "redis").Port)
	mongoAddr := "127.0.0.1:" + strconv.Itoa(service(st, "mongo").Port)
	if _, err := p.redisApp(t, service(st, "redis").Port, "SET", "secret-key", "app-data"); err != nil {
		t.Fatal(err)
	}

	t.Run("redis as nobody", func(t *testing.T) {
		for _, args := range [][]string{{"GET", "secret-key"}, {"SET", "x", "y"}, {"CONFIG", "SET", "appendonly", "no"}, {"SHUTDOWN", "NOSAVE"}} {
			out, _ := asNobody(t, nil, redisCLI, append([]string{"-h", "127.0.0.1", "-p", redisPort}, args...)...)
			if !strings.Contains(out, "NOAUTH") {
				t.Errorf("redis-cli %v as nobody: %q, want NOAUTH", args, out)
			}
		}
	})
	t.Run("mongo as nobody", func(t *testing.T) {
		for _, c := range []struct{ db, cmd string }{
			{"second", `{"find": "items"}`},
			{"second", `{"insert": "items", "documents": [{"v": 1}]}`},
			{"admin", `{"shutdown": 1}`},
			{"admin", `{"createUser": "evil", "pwd": "x", "roles": ["root"]}`},
		} {
			out, err := mongoCmd(t, client, mongoAddr, c.db, c.cmd, "", "", true)
			if err == nil || !strings.Contains(out, "requires authentication") {
				t.Errorf("%s as nobody: %v %q, want a refusal that requires authentication", c.cmd, err, out)
			}
		}
	})
	t.Run("the app's credentials cannot administer", func(t *testing.T) {
		for _, args := range [][]string{{"CONFIG", "SET", "appendonly", "no"}, {"SHUTDOWN", "NOSAVE"}, {"DEBUG", "SLEEP", "0"}} {
			if _, err := p.redisApp(t, service(st, "redis").Port, args...); err == nil {
				t.Errorf("redis %v as the app succeeded", args)
			}
		}
		pw := p.secret(t, "mongo-password")
		if out, err := mongoCmd(t, client, mongoAddr, "second", `{"insert": "items", "documents": [{"v": 1}]}`, "second", pw, false); err != nil {
			t.Errorf("the app cannot write its database: %q", out)
		}
		if out, err := mongoCmd(t, client, mongoAddr, "admin", `{"shutdown": 1}`, "second", pw, false); err == nil || !strings.Contains(out, "not authorized") {
			t.Errorf("mongo shutdown as the app: %v %q, want not authorized", err, out)
		}
	})
	if st := p.status(t); service(st, "redis").Restarts != 0 || service(st, "mongo").Restarts != 0 || !st.Running {
		t.Errorf("a refused attempt disturbed the stack: %+v", st)
	}
	// The supervisor's own credentials stop both cleanly.
	if out, errOut, code := p.run(t, nil, "stop"); code != 0 {
		t.Fatalf("stop: %d %q %q", code, out, errOut)
	}
	if err := r.wait(t, 20*time.Second); err != nil {
		t.Errorf("second exited with %v:\n%s", err, r.out)
	}
	if log := p.log("mongo"); strings.Contains(log, "SIGKILL") {
		t.Errorf("mongod needed SIGKILL:\n%s", log)
	}
}

// TestUpgradeHomeWithoutAccessControl starts the previous layout first —
// mongod without a key file and redis-server with the old config, data
// written into the home as the previous release did — then `second start`.
func TestUpgradeHomeWithoutAccessControl(t *testing.T) {
	p := newPayload(t, testsupport.MongodPath(t))
	redisBin := testsupport.Tool(t, "redis-server")
	for _, d := range []string{"data/mongo", "data/redis", "logs"} {
		if err := os.MkdirAll(filepath.Join(p.home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Previous release: mongod on the recorded port, no users.
	m := testsupport.StartMongod(t, testsupport.MongodOptions{DBPath: filepath.Join(p.home, "data", "mongo")})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := mongoready.Ensure(ctx, mongoready.Options{Port: m.Port}); err != nil {
		t.Fatal(err)
	}
	old, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://127.0.0.1:%d/second?directConnection=true&replicaSet=rs0", m.Port)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Database("second").Collection("workspaces").InsertOne(ctx, bson.D{{Key: "name", Value: "kept"}}); err != nil {
		t.Fatal(err)
	}
	_ = old.Disconnect(ctx)
	m.Stop(t)
	// Previous release: redis.conf without users.
	redisPort := testsupport.FreePort(t)
	conf := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %q\nappendonly yes\nsave 60 1\n", redisPort, filepath.Join(p.home, "data", "redis"))
	if err := os.WriteFile(filepath.Join(p.home, "redis.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := exec.Command(redisBin, filepath.Join(p.home, "redis.conf"))
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(redisPort)
	for i := 0; ; i++ {
		if _, err := testsupport.RedisDo(addr, "SET", "session:1", "kept"); err == nil {
			break
		} else if i > 200 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _ = testsupport.RedisDo(addr, "SHUTDOWN") // saves
	_ = rc.Wait()
	// The previous release's runtime.json remembers the mongo port.
	if err := state.Write(filepath.Join(p.home, "runtime.json"), &state.State{Home: p.home, Phase: "stopped", MongoPort: m.Port}); err != nil {
		t.Fatal(err)
	}

	p.start(t, nil)
	st := p.status(t)
	if got, err := p.redisApp(t, service(st, "redis").Port, "GET", "session:1"); err != nil || got != "kept" {
		t.Errorf("redis key after the upgrade: %q, %v", got, err)
	}
	if _, err := testsupport.RedisDo("127.0.0.1:"+strconv.Itoa(service(st, "redis").Port), "GET", "session:1"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("redis without a password after the upgrade: %v, want NOAUTH", err)
	}
	mongoAddr := "127.0.0.1:" + strconv.Itoa(service(st, "mongo").Port)
	c, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://second:%s@%s/second?authSource=admin&directConnection=true", p.secret(t, "mongo-password"), mongoAddr)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	var doc bson.M
	if err := c.Database("second").Collection("workspaces").FindOne(ctx, bson.D{}).Decode(&doc); err != nil || doc["name"] != "kept" {
		t.Errorf("mongo document after the upgrade: %v, %v", doc, err)
	}
	anon, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + mongoAddr + "/?directConnection=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Disconnect(ctx)
	err = anon.Database("second").RunCommand(ctx, bson.D{{Key: "find", Value: "workspaces"}}).Err()
	if err == nil || !strings.Contains(err.Error(), "requires authentication") {
		t.Errorf("mongo without credentials after the upgrade: %v", err)
	}
	b, _ := json.Marshal(st)
	t.Logf("status after the upgrade: %s", b)
}
