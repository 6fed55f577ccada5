// Package home is the one place that knows the layout of the runtime's home
// directory (~/.second by default) and the release tool's cache.
package home

import (
	"errors"
	"os"
	"path/filepath"
)

// Resolve picks the home dir: the flag, else $SECOND_HOME, else ~/.second.
func Resolve(flag string) (string, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv("SECOND_HOME")
	}
	if dir == "" {
		u, err := os.UserHomeDir()
		if err != nil {
			return "", errors.New("cannot find the user's home directory: set $SECOND_HOME or pass --home")
		}
		dir = filepath.Join(u, ".second")
	}
	return filepath.Abs(dir)
}

// Layout is the set of paths under one home dir.
type Layout struct{ Root string }

func (l Layout) DataDir() string           { return filepath.Join(l.Root, "data") }
func (l Layout) MongoData() string         { return filepath.Join(l.Root, "data", "mongo") }
func (l Layout) RedisData() string         { return filepath.Join(l.Root, "data", "redis") }
func (l Layout) Workspaces() string        { return filepath.Join(l.Root, "data", "workspaces") }
func (l Layout) LogsDir() string           { return filepath.Join(l.Root, "logs") }
func (l Layout) Log(service string) string { return filepath.Join(l.Root, "logs", service+".log") }
func (l Layout) SecretsDir() string        { return filepath.Join(l.Root, "secrets") }
func (l Layout) Secret(name string) string { return filepath.Join(l.Root, "secrets", name) }
func (l Layout) ControlFile() string       { return filepath.Join(l.Root, "local-control.json") }
func (l Layout) StateFile() string         { return filepath.Join(l.Root, "runtime.json") }
func (l Layout) LockFile() string          { return filepath.Join(l.Root, "runtime.lock") }
func (l Layout) PayloadsDir() string       { return filepath.Join(l.Root, "cli-payloads") }
func (l Layout) RedisConfig() string       { return filepath.Join(l.Root, "redis.conf") }

// Marker is written when the runtime creates a home, so `reset` can refuse
// to delete a directory it did not create.
func (l Layout) Marker() string { return filepath.Join(l.Root, ".second-home") }

// Secret file names under the home's secrets directory (mode 0700, files 0600).
const (
	SecretInternalAPIToken = "internal-api-token"
	SecretSessionSecret    = "no-auth-session-secret"
	SecretControlToken     = "local-control-token"
	// SecretServerActionsKey keys Next.js server actions per install: the
	// key built into a reproducible web build is derived from the commit, so public.
	SecretServerActionsKey = "server-actions-key"
	// The app's credentials for Redis (default ACL user) and MongoDB (user
	// "second"), and mongod's key file, which turns its access control on.
	SecretRedisPassword = "redis-password"
	SecretMongoPassword = "mongo-password"
	SecretMongoKeyFile  = "mongo-keyfile"
	// The supervisor's own administrative credentials (probes, shutdown,
	// user management), never given to the app.
	SecretRedisAdminPassword = "redis-admin-password"
	SecretMongoAdminPassword = "mongo-admin-password"
)

// ReleaseCacheDir is where `release` caches downloads keyed by digest:
// $SECOND_RELEASE_CACHE, else the user cache dir.
func ReleaseCacheDir() (string, error) {
	if d := os.Getenv("SECOND_RELEASE_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "second-release"), nil
}
