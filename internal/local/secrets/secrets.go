// Package secrets creates the runtime's secrets once (32 random bytes, files
// 0600 in a 0700 dir under the home) and reuses them on every later start;
// for the app-facing tokens an environment variable of the same name
// overrides the file's value. Database credentials are never overridden:
// the servers keep them with the data.
package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/second-inc/second-release/internal/home"
)

// Set is the secrets one runtime uses.
type Set struct {
	InternalAPIToken string // web <-> worker
	SessionSecret    string // no-auth session cookies
	ControlToken     string // bearer token of the local control server
	ServerActionsKey string // NEXT_SERVER_ACTIONS_ENCRYPTION_KEY (AES-256, base64)

	// Database credentials: see Databases.
	Databases Databases
}

// Databases are the credentials of the local Redis and MongoDB: the app's
// (handed to web and worker in REDIS_URL / MONGODB_URI) and the
// supervisor's administrative ones, plus mongod's key file path.
type Databases struct {
	RedisPassword      string
	RedisAdminPassword string
	MongoPassword      string
	MongoAdminPassword string
	MongoKeyFile       string // path of the key file (mongod --keyFile)
}

// Spec describes one secret: its file, the env var that overrides it (none
// when empty) and how its random bytes are encoded.
type Spec struct {
	File   string
	Env    string
	Encode func([]byte) string
}

// keyFileEncode is mongod's key-file alphabet: standard base64 (6 to 1024
// characters); 32 bytes give 44.
func keyFileEncode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Specs lists the secrets in a fixed order (a function, not a variable:
// nothing here should be mutable).
func Specs() []Spec {
	return []Spec{
		{File: home.SecretInternalAPIToken, Env: "INTERNAL_API_TOKEN", Encode: hex.EncodeToString},
		{File: home.SecretSessionSecret, Env: "SECOND_NO_AUTH_SESSION_SECRET", Encode: base64.RawURLEncoding.EncodeToString},
		{File: home.SecretControlToken, Env: "SECOND_LOCAL_CLI_TOKEN", Encode: hex.EncodeToString},
		{File: home.SecretServerActionsKey, Env: "NEXT_SERVER_ACTIONS_ENCRYPTION_KEY", Encode: base64.StdEncoding.EncodeToString},
		// URL-safe: they go into MONGODB_URI and REDIS_URL as they are.
		{File: home.SecretRedisPassword, Encode: base64.RawURLEncoding.EncodeToString},
		{File: home.SecretRedisAdminPassword, Encode: base64.RawURLEncoding.EncodeToString},
		{File: home.SecretMongoPassword, Encode: base64.RawURLEncoding.EncodeToString},
		{File: home.SecretMongoAdminPassword, Encode: base64.RawURLEncoding.EncodeToString},
		{File: home.SecretMongoKeyFile, Encode: keyFileEncode},
	}
}

// Options configures Ensure.
type Options struct {
	Layout home.Layout
	// Getenv reads overrides; nil means os.Getenv. Tests pass a map lookup.
	Getenv func(string) string
}

// Ensure returns the secrets, creating missing files. Existing files are
// reused and their permissions tightened if someone loosened them.
func Ensure(opts Options) (Set, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	dir := opts.Layout.SecretsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Set{}, fmt.Errorf("create secrets dir %s: %w", dir, err)
	}
	// MkdirAll keeps an existing dir's mode; the dir must not be readable by others.
	if err := os.Chmod(dir, 0o700); err != nil {
		return Set{}, fmt.Errorf("restrict secrets dir %s: %w", dir, err)
	}
	specs := Specs()
	values := make([]string, len(specs))
	for i, s := range specs {
		v, err := ensureOne(filepath.Join(dir, s.File), s.Encode)
		if err != nil {
			return Set{}, err
		}
		if env := strings.TrimSpace(getenv(s.Env)); s.Env != "" && env != "" {
			v = env
		}
		values[i] = v
	}
	return Set{InternalAPIToken: values[0], SessionSecret: values[1], ControlToken: values[2], ServerActionsKey: values[3],
		Databases: Databases{
			RedisPassword: values[4], RedisAdminPassword: values[5],
			MongoPassword: values[6], MongoAdminPassword: values[7],
			MongoKeyFile: opts.Layout.Secret(home.SecretMongoKeyFile),
		}}, nil
}

func ensureOne(path string, encode func([]byte) string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("restrict secret file %s: %w", path, err)
			}
			return v, nil
		}
		// An empty file is a leftover of an interrupted write elsewhere; replace it.
		if err := os.Remove(path); err != nil {
			return "", fmt.Errorf("replace empty secret file %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read secret file %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate secret for %s: %w", path, err)
	}
	v := encode(raw)
	// Write a temp file, then link it into place: a crash never leaves a
	// half-written secret, and a concurrent creator's value wins consistently.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-secret-*")
	if err != nil {
		return "", fmt.Errorf("create secret file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("restrict secret file %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.WriteString(v + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write secret file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write secret file %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ensureOne(path, encode)
		}
		return "", fmt.Errorf("install secret file %s: %w", path, err)
	}
	return v, nil
}
