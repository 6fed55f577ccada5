package stack

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/state"
	"github.com/second-inc/second-release/internal/local/supervise"
)

type processSet struct{ mongo, redis, web, worker *supervise.Process }

// Infra is mongod and redis-server for one data layout: the runtime's home,
// or a worktree's .second-dev/ for `second dev`. Both commands describe
// them through here so they run the same way.
type Infra struct {
	Layout               home.Layout
	Payload              *Payload // Mongod, RedisServer, LibDir
	MongoPort, RedisPort int
	Environ              []string     // the user's environment (os.Environ form)
	Log                  *slog.Logger // default discarded
	// ReadyTimeout overrides both start deadlines (tests).
	ReadyTimeout time.Duration
}

// Prepare creates the data and log dirs and writes what the servers read
// at start (redis.conf for this run's port).
func (in Infra) Prepare() error {
	for _, d := range []string{in.Layout.MongoData(), in.Layout.RedisData(), in.Layout.LogsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return writeRedisConfig(in.Layout, in.RedisPort)
}

// Processes describes mongod and redis-server as plain data.
func (in Infra) Processes() (mongo, redis *supervise.Process) {
	l, p := in.Layout, in.Payload
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := func(d time.Duration) time.Duration {
		if in.ReadyTimeout > 0 {
			return in.ReadyTimeout
		}
		return d
	}
	nativeEnv := NativeEnv(p, in.Environ)
	mongo = &supervise.Process{
		Name:    ServiceMongo,
		Command: p.Mongod,
		Args: []string{"--dbpath", l.MongoData(), "--bind_ip", "127.0.0.1",
			"--port", strconv.Itoa(in.MongoPort), "--replSet", "rs0"},
		Dir:     l.Root,
		Env:     nativeEnv,
		LogPath: l.Log(ServiceMongo),
		// A fresh data dir preallocates its journal; slow disks need time.
		ReadyTimeout: timeout(2 * time.Minute),
		Stop:         supervise.StopPolicy{Grace: MongoGrace},
		Port:         in.MongoPort,
	}
	mongoHooks(mongo, in.MongoPort, log)

	redis = &supervise.Process{
		Name:         ServiceRedis,
		Command:      p.RedisServer,
		Args:         []string{l.RedisConfig()},
		Dir:          l.RedisData(),
		Env:          nativeEnv,
		LogPath:      l.Log(ServiceRedis),
		Ready:        briskly(probe.Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.RedisPort))}),
		ReadyTimeout: timeout(time.Minute),
		Stop:         supervise.StopPolicy{Grace: 20 * time.Second},
		Port:         in.RedisPort,
	}
	return mongo, redis
}

// infra is this run's Infra.
func (rt *Runtime) infra() Infra {
	return Infra{Layout: rt.opts.Layout, Payload: rt.opts.Payload,
		MongoPort: rt.ports[ServiceMongo], RedisPort: rt.ports[ServiceRedis],
		Environ: rt.opts.Environ, Log: rt.log, ReadyTimeout: rt.opts.ReadyTimeout}
}

// processes describes the four children as plain data.
func (rt *Runtime) processes(control *Control) processSet {
	l := rt.opts.Layout
	p := rt.opts.Payload
	in := EnvInput{
		Home: l.Root, WebPort: rt.ports[ServiceWeb], WorkerPort: rt.ports[ServiceWorker],
		MongoPort: rt.ports[ServiceMongo], RedisPort: rt.ports[ServiceRedis],
		InternalAPIToken: rt.secrets.InternalAPIToken, SessionSecret: rt.secrets.SessionSecret,
		ServerActionsKey: rt.secrets.ServerActionsKey,
		ReleaseVersion:   rt.opts.Version, PackageName: rt.opts.PackageName,
		WorkspacesDir:    l.Workspaces(),
		DisableTelemetry: rt.opts.DisableTelemetry || TelemetryDisabled(rt.opts.Getenv),
		Environ:          rt.opts.Environ,
	}
	if control != nil {
		in.ControlURL, in.ControlToken = control.URL, rt.secrets.ControlToken
	}
	timeout := func(d time.Duration) time.Duration {
		if rt.opts.ReadyTimeout > 0 {
			return rt.opts.ReadyTimeout
		}
		return d
	}
	mongo, redis := rt.infra().Processes()
	web := &supervise.Process{
		Name:         ServiceWeb,
		Command:      p.Node,
		Args:         []string{p.WebServer},
		Dir:          p.WebDir,
		Env:          WebEnv(in),
		LogPath:      l.Log(ServiceWeb),
		Ready:        briskly(probe.HTTP{URL: "http://127.0.0.1:" + strconv.Itoa(in.WebPort) + "/api/health"}),
		ReadyTimeout: timeout(90 * time.Second),
		Stop:         supervise.StopPolicy{Grace: 10 * time.Second},
		Port:         in.WebPort,
	}
	worker := &supervise.Process{
		Name:         ServiceWorker,
		Command:      p.Node,
		Args:         append([]string(nil), p.WorkerArgs...),
		Dir:          p.WorkerDir,
		Env:          WorkerEnv(in),
		LogPath:      l.Log(ServiceWorker),
		Ready:        briskly(probe.HTTP{URL: "http://127.0.0.1:" + strconv.Itoa(in.WorkerPort) + "/health"}),
		ReadyTimeout: timeout(90 * time.Second),
		Stop:         supervise.StopPolicy{Grace: 10 * time.Second},
		Port:         in.WorkerPort,
	}
	return processSet{mongo, redis, web, worker}
}

// NativeEnv is mongod's and redis-server's environment: system basics plus
// the payload's library dir. Node never gets the library path: it would load
// the payload's OpenSSL instead of its own.
func NativeEnv(p *Payload, environ []string) []string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && (k == "PATH" || k == "HOME" || k == "TMPDIR" || k == "TZ" || k == "LANG" || k == "LC_ALL") {
			m[k] = v
		}
	}
	if lib := p.LibDir; lib != "" {
		m[LibraryPathVar()] = lib
	}
	return render(m)
}

// LibraryPathVar is the dynamic loader's search-path variable on this OS.
func LibraryPathVar() string {
	if runtime.GOOS == "darwin" {
		return "DYLD_LIBRARY_PATH"
	}
	return "LD_LIBRARY_PATH"
}

// writeRedisConfig generates redis.conf for this run's port.
func writeRedisConfig(l home.Layout, port int) error {
	conf := fmt.Sprintf(`# Generated by second on every start; edits are overwritten.
bind 127.0.0.1
port %d
protected-mode yes
daemonize no
dir %s
appendonly yes
appendfsync everysec
save 60 1
logfile ""
`, port, quoteRedis(l.RedisData()))
	return state.WriteFileAtomic(l.RedisConfig(), []byte(conf), 0o600)
}

// quoteRedis quotes a path for redis.conf (spaces in home dirs are common on macOS).
func quoteRedis(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
