package mongoready

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Credential is a user of the admin database.
type Credential struct {
	Username, Password string
}

// Auth is the users of a mongod started with --keyFile: the supervisor's
// admin (root: replica-set management, user management, shutdown) and
// the app's user (readWrite on AppDB, which covers change streams and
// index builds).
type Auth struct {
	Admin Credential
	App   Credential
	AppDB string
}

// Default user names and database of the runtime's mongod.
const (
	AdminUser = "second-admin"
	AppUser   = "second"
	AppDB     = "second"
)

// Server error codes of access control.
const (
	codeUnauthorized         = 13
	codeAuthenticationFailed = 18
	codeUserNotFound         = 11
)

// errUsersExist: the data already has users, none of them ours.
var errUsersExist = errors.New("mongod's data has users, but not the runtime's admin with the password in secrets/")

// ensureWithAuth: a data dir without users (fresh, or written by a runtime
// without access control) is bootstrapped through the localhost exception —
// replica set first, then the admin user, which closes the exception.
// Everything after that runs as admin.
func ensureWithAuth(ctx context.Context, o Options) error {
	a := o.Auth
	for {
		// One client as admin for the check and the replica-set steps:
		// every sign-in is a SCRAM exchange, which start-to-ready feels.
		c, err := connect(o.Port, &a.Admin)
		if err != nil {
			return err
		}
		err = c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
		if err == nil {
			err = ensureReplSetOn(ctx, o, c)
			disconnect(c)
			if err != nil {
				return err
			}
			return EnsureUsers(ctx, o.Port, *a)
		}
		disconnect(c)
		if !isAuthFailure(err) {
			// Not up yet: wait like the replica-set steps do.
			select {
			case <-ctx.Done():
				return fmt.Errorf("mongod on %s: %w", Addr(o.Port), err)
			case <-time.After(o.Poll):
				continue
			}
		}
		if err := bootstrap(ctx, o); err != nil {
			return err
		}
	}
}

// bootstrap turns a mongod with no users into one with our admin, through
// the localhost exception.
func bootstrap(ctx context.Context, o Options) error {
	o.bootstrapping = true
	if err := ensureReplSet(ctx, o, nil); err != nil {
		if errors.Is(err, errNotAuthorized) {
			return fmt.Errorf("%w: %v; restore the secrets directory of this home, or run `second reset` to start over without the data", errUsersExist, err)
		}
		return err
	}
	c, err := connect(o.Port, nil)
	if err != nil {
		return err
	}
	defer disconnect(c)
	o.Log.Info("creating mongod admin user (first start with access control)", "user", o.Auth.Admin.Username)
	err = createUser(ctx, c.Database("admin"), o.Auth.Admin, bson.A{bson.D{{Key: "role", Value: "root"}, {Key: "db", Value: "admin"}}})
	switch {
	case err == nil:
		return nil
	case errCode(err) == codeUnauthorized:
		return fmt.Errorf("%w (createUser: %v); restore the secrets directory of this home, or run `second reset` to start over without the data", errUsersExist, err)
	default:
		return fmt.Errorf("create mongod admin user: %w", err)
	}
}

// EnsureUsers makes sure the app's user exists with the app's password and
// role, as admin. It changes nothing when the app can already sign in.
func EnsureUsers(ctx context.Context, port int, a Auth) error {
	if a.AppDB == "" {
		a.AppDB = AppDB
	}
	if err := Authenticate(ctx, port, a.App); err == nil {
		return nil
	} else if !isAuthFailure(err) {
		return err
	}
	c, err := connect(port, &a.Admin)
	if err != nil {
		return err
	}
	defer disconnect(c)
	admin := c.Database("admin")
	roles := bson.A{bson.D{{Key: "role", Value: "readWrite"}, {Key: "db", Value: a.AppDB}}}
	err = createUser(ctx, admin, a.App, roles)
	if err == nil {
		return nil
	}
	// It exists with another password (the secrets dir was restored from
	// elsewhere): the password file wins.
	uerr := admin.RunCommand(ctx, bson.D{{Key: "updateUser", Value: a.App.Username}, {Key: "pwd", Value: a.App.Password}, {Key: "roles", Value: roles}}).Err()
	if uerr != nil {
		return fmt.Errorf("create or update mongod user %q: %w", a.App.Username, errors.Join(err, uerr))
	}
	return nil
}

func createUser(ctx context.Context, admin *mongo.Database, c Credential, roles bson.A) error {
	return admin.RunCommand(ctx, bson.D{{Key: "createUser", Value: c.Username}, {Key: "pwd", Value: c.Password}, {Key: "roles", Value: roles}}).Err()
}

// Authenticate signs in as c and pings; the error tells an authentication
// failure (isAuthFailure) from a server that does not answer.
func Authenticate(ctx context.Context, port int, c Credential) error {
	cl, err := connect(port, &c)
	if err != nil {
		return err
	}
	defer disconnect(cl)
	if err := cl.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("sign in to mongod on %s as %q: %w", Addr(port), c.Username, err)
	}
	return nil
}

// isAuthFailure: the driver reports a failed SCRAM exchange as a
// handshake error that wraps the server's code 18.
func isAuthFailure(err error) bool {
	if err == nil {
		return false
	}
	if c := errCode(err); c == codeAuthenticationFailed || c == codeUserNotFound {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "AuthenticationFailed") || strings.Contains(s, "Authentication failed")
}
