package stack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/mongoready"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/redisconf"
	"github.com/second-inc/second-release/internal/local/secrets"
	"github.com/second-inc/second-release/internal/local/supervise"
)

// RedisGrace is how long redis-server may take to exit on SIGTERM (it
// writes its append-only file).
const RedisGrace = 5 * time.Second

// Infra is mongod and redis-server for one data layout: the runtime's home,
// or a worktree's .second-dev/ for `second dev`. Both commands describe
// them through here so they run the same way, with access control on.
type Infra struct {
	Layout               home.Layout
	Payload              *Payload // Mongod, RedisServer, LibDir
	MongoPort, RedisPort int
	// Credentials are the databases' passwords and key file
	// (secrets.Ensure); both servers refuse clients without them.
	Credentials secrets.Databases
	Environ     []string     // the user's environment (os.Environ form)
	Log         *slog.Logger // default discarded
	// ReadyTimeout overrides both start deadlines (tests).
	ReadyTimeout time.Duration
}

// Prepare creates the data and log dirs and writes what the servers read
// at start: redis.conf for this run's port and users. It runs on every
// start, so an older file (without access control) is replaced; the data
// under data/redis is kept.
func (in Infra) Prepare() error {
	for _, d := range []string{in.Layout.MongoData(), in.Layout.RedisData(), in.Layout.LogsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return redisconf.Write(in.Layout.RedisConfig(), redisconf.Config{
		Port: in.RedisPort, Dir: in.Layout.RedisData(),
		AppPassword: in.Credentials.RedisPassword, AdminPassword: in.Credentials.RedisAdminPassword,
	})
}

// MongoAuth is the mongod users the runtime keeps: its admin and the app's.
func (in Infra) MongoAuth() mongoready.Auth {
	return mongoready.Auth{
		Admin: mongoready.Credential{Username: mongoready.AdminUser, Password: in.Credentials.MongoAdminPassword},
		App:   mongoready.Credential{Username: mongoready.AppUser, Password: in.Credentials.MongoPassword},
		AppDB: mongoready.AppDB,
	}
}

// Processes describes mongod and redis-server as plain data.
func (in Infra) Processes() (mongo, redis *supervise.Process) {
	return in.mongoProcess(), in.redisProcess()
}

func (in Infra) timeout(def time.Duration) time.Duration {
	if in.ReadyTimeout > 0 {
		return in.ReadyTimeout
	}
	return def
}

// mongoProcess is mongod with its key file (access control on) and what
// is special about it, all from mongoready: readiness by ping, replica-set
// initiation or repair and the users (created through the localhost
// exception on the first start, also for a home written before access
// control) before the service counts as ready, fail-fast on fatal log
// lines, and the shutdown command as the admin.
func (in Infra) mongoProcess() *supervise.Process {
	l := in.Layout
	port := in.MongoPort
	auth := in.MongoAuth()
	pinger := &mongoready.Pinger{Port: port}
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &supervise.Process{
		Name:    ServiceMongo,
		Command: in.Payload.Mongod,
		Args: []string{"--dbpath", l.MongoData(), "--bind_ip", "127.0.0.1",
			"--port", strconv.Itoa(port), "--replSet", mongoready.DefaultReplSet,
			"--keyFile", in.Credentials.MongoKeyFile},
		Dir:     l.Root,
		Env:     NativeEnv(in.Payload, in.Environ),
		LogPath: l.Log(ServiceMongo),
		Ready:   briskly(probe.Func(func(ctx context.Context) error { return mongoready.Ping(ctx, port) })),
		AfterReady: func(ctx context.Context) error {
			// Poll briskly: start-to-ready is what users feel.
			return mongoready.Ensure(ctx, mongoready.Options{Port: port, Log: log, Poll: 10 * time.Millisecond, Auth: &auth})
		},
		// A fresh data dir preallocates its journal; slow disks need time.
		ReadyTimeout: in.timeout(2 * time.Minute),
		FatalLine:    mongoready.FatalLine,
		Liveness: &supervise.Liveness{
			Probe:    pinger,
			Interval: LiveInterval, Timeout: LiveTimeout, Failures: LiveFailures, Grace: MongoGrace,
		},
		Stop: supervise.StopPolicy{
			Before: func(ctx context.Context) error {
				pinger.Close() // the service is going for good
				return mongoready.Shutdown(ctx, port, &auth.Admin)
			},
			Grace: MongoGrace,
		},
		Port: port,
	}
}

// redisProcess is redis-server with the generated redis.conf, probed as
// the admin user.
func (in Infra) redisProcess() *supervise.Process {
	ping := probe.Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.RedisPort)),
		Username: redisconf.AdminUser, Password: in.Credentials.RedisAdminPassword}
	return &supervise.Process{
		Name:         ServiceRedis,
		Command:      in.Payload.RedisServer,
		Args:         []string{in.Layout.RedisConfig()},
		Dir:          in.Layout.RedisData(),
		Env:          NativeEnv(in.Payload, in.Environ),
		LogPath:      in.Layout.Log(ServiceRedis),
		Ready:        briskly(ping),
		ReadyTimeout: in.timeout(time.Minute),
		Liveness:     &supervise.Liveness{Probe: ping, Interval: LiveInterval, Timeout: LiveTimeout, Failures: LiveFailures, Grace: RedisGrace},
		Stop:         supervise.StopPolicy{Grace: RedisGrace},
		Port:         in.RedisPort,
	}
}
