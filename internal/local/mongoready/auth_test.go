package mongoready

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/second-inc/second-release/internal/testsupport"
)

func writeKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyfile")
	if err := os.WriteFile(p, []byte("c2Vjb25kLXRlc3Qta2V5LWZpbGUtY29udGVudHM=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func testAuth() Auth {
	return Auth{Admin: Credential{AdminUser, "admin-pw-1"}, App: Credential{AppUser, "app-pw-1"}, AppDB: AppDB}
}

// runCmd runs cmd in db as cred (nil: unauthenticated).
func runCmd(t *testing.T, port int, cred *Credential, db string, cmd bson.D) error {
	t.Helper()
	c, err := connect(port, cred)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Database(db).RunCommand(ctx, cmd).Err()
}

func TestEnsureWithAuthCreatesUsersAndLocksOut(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{KeyFile: writeKeyFile(t)})
	a := testAuth()
	ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
	defer cancel()
	if err := Ensure(ctx, Options{Port: m.Port, Auth: &a}); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(ctx, Options{Port: m.Port, Auth: &a}); err != nil {
		t.Fatalf("second Ensure (idempotent): %v", err)
	}
	insert := bson.D{{Key: "insert", Value: "items"}, {Key: "documents", Value: bson.A{bson.D{{Key: "v", Value: 1}}}}}
	if err := runCmd(t, m.Port, &a.App, AppDB, insert); err != nil {
		t.Errorf("the app cannot write its database: %v", err)
	}
	if err := runCmd(t, m.Port, nil, AppDB, bson.D{{Key: "find", Value: "items"}}); errCode(err) != codeUnauthorized {
		t.Errorf("unauthenticated find = %v, want code 13 (requires authentication)", err)
	}
	if err := runCmd(t, m.Port, &Credential{AppUser, "wrong"}, AppDB, bson.D{{Key: "ping", Value: 1}}); !isAuthFailure(err) {
		t.Errorf("a wrong password = %v, want an authentication failure", err)
	}
	if err := runCmd(t, m.Port, &a.App, "admin", bson.D{{Key: "shutdown", Value: 1}}); errCode(err) != codeUnauthorized {
		t.Errorf("the app's shutdown = %v, want code 13 (not authorized)", err)
	}
	if err := runCmd(t, m.Port, &a.App, "admin", bson.D{{Key: "createUser", Value: "evil"}, {Key: "pwd", Value: "x"}, {Key: "roles", Value: bson.A{"root"}}}); errCode(err) != codeUnauthorized {
		t.Errorf("the app's createUser = %v, want code 13", err)
	}
	// The supervisor's credential can shut it down.
	if err := Shutdown(ctx, m.Port, &a.Admin); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Exited():
	case <-time.After(60 * time.Second):
		t.Fatal("mongod still running after the admin's shutdown")
	}
}

// A data dir written without access control (the previous runtime) gets
// its users on the first start with a key file, keeping its documents.
func TestEnsureWithAuthUpgradesNoAuthData(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{})
	ensure(t, m.Port)
	write(t, m.Port, "before access control")
	m.Stop(t)

	m2 := testsupport.StartMongod(t, testsupport.MongodOptions{DBPath: m.DBPath, Port: m.Port, KeyFile: writeKeyFile(t)})
	a := testAuth()
	ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
	defer cancel()
	if err := Ensure(ctx, Options{Port: m2.Port, Auth: &a}); err != nil {
		t.Fatal(err)
	}
	c, err := connect(m2.Port, &a.App)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect(c)
	n, err := c.Database(AppDB).Collection("probe").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Errorf("documents after the upgrade = %d, %v; want 1", n, err)
	}
	if err := runCmd(t, m2.Port, nil, AppDB, bson.D{{Key: "find", Value: "probe"}}); errCode(err) != codeUnauthorized {
		t.Errorf("unauthenticated find after the upgrade = %v, want code 13", err)
	}
}

// Users that are not ours (or a lost admin password) are refused at once
// with what to do, not retried until the deadline.
func TestEnsureWithAuthRefusesForeignUsers(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{KeyFile: writeKeyFile(t)})
	a := testAuth()
	ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
	defer cancel()
	if err := Ensure(ctx, Options{Port: m.Port, Auth: &a}); err != nil {
		t.Fatal(err)
	}
	lost := a
	lost.Admin.Password = "not-the-one"
	began := time.Now()
	err := Ensure(ctx, Options{Port: m.Port, Auth: &lost})
	if !errors.Is(err, errUsersExist) || !strings.Contains(err.Error(), "secrets") {
		t.Fatalf("Ensure with a lost admin password = %v, want a refusal naming the secrets", err)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("refusal took %v; it should not wait for a deadline", d)
	}
}

// The app's password file wins over a user left with another password.
func TestEnsureUsersResetsAppPassword(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{KeyFile: writeKeyFile(t)})
	a := testAuth()
	ctx, cancel := context.WithTimeout(context.Background(), ensureTimeout)
	defer cancel()
	if err := Ensure(ctx, Options{Port: m.Port, Auth: &a}); err != nil {
		t.Fatal(err)
	}
	a.App.Password = "app-pw-2"
	if err := Ensure(ctx, Options{Port: m.Port, Auth: &a}); err != nil {
		t.Fatal(err)
	}
	if err := Authenticate(ctx, m.Port, a.App); err != nil {
		t.Errorf("the new app password does not work: %v", err)
	}
}

// The liveness Pinger keeps its client across a mongod restart on the
// same port and fails within its ctx while mongod is stopped.
func TestPingerSurvivesRestartAndNoticesAHang(t *testing.T) {
	m := testsupport.StartMongod(t, testsupport.MongodOptions{})
	p := &Pinger{Port: m.Port}
	defer p.Close()
	check := func(within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return p.Check(ctx)
	}
	// A healthy mongod gets a generous deadline (a real one on a loaded
	// machine is slow to its first answer); the hung one gets a second.
	if err := check(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(m.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, m.PID())
	began := time.Now()
	if err := check(time.Second); err == nil || time.Since(began) > 3*time.Second {
		t.Errorf("a stopped mongod: %v after %v", err, time.Since(began))
	}
	syscall.Kill(m.PID(), syscall.SIGCONT)
	m.Stop(t)
	m2 := testsupport.StartMongod(t, testsupport.MongodOptions{DBPath: m.DBPath, Port: m.Port})
	_ = m2
	deadline := time.Now().Add(30 * time.Second)
	for check(time.Second) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the Pinger did not reconnect to the restarted mongod")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStopped returns once the kernel shows pid stopped: kill(2) returns
// before every thread of the target has taken SIGSTOP, and a request sent
// in between may still be answered.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Skipf("waiting for SIGSTOP needs /proc (Linux): %v", err)
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not stopped 5 s after SIGSTOP: %s", pid, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
