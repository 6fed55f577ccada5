package stack

import (
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/local/probe"
	"github.com/second-inc/second-release/internal/local/supervise"
)

type processSet struct{ mongo, redis, web, worker *supervise.Process }

// infra is this run's Infra.
func (rt *Runtime) infra() Infra {
	return Infra{Layout: rt.opts.Layout, Payload: rt.opts.Payload,
		MongoPort: rt.ports[ServiceMongo], RedisPort: rt.ports[ServiceRedis], Credentials: rt.secrets.Databases,
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
		MongoPassword: rt.secrets.Databases.MongoPassword, RedisPassword: rt.secrets.Databases.RedisPassword,
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
		Liveness:     liveness(probe.HTTP{URL: "http://127.0.0.1:" + strconv.Itoa(in.WebPort) + "/api/health"}),
		Stop:         supervise.StopPolicy{Grace: NodeGrace},
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
		Liveness:     liveness(probe.HTTP{URL: "http://127.0.0.1:" + strconv.Itoa(in.WorkerPort) + "/health"}),
		Stop:         supervise.StopPolicy{Grace: NodeGrace},
		Port:         in.WorkerPort,
	}
	return processSet{mongo, redis, web, worker}
}

// Liveness: a check every LiveInterval, each bounded by LiveTimeout;
// LiveFailures failures in a row restart the service. A hung service is
// noticed within LiveFailures × LiveInterval + LiveTimeout (7 s).
const (
	LiveInterval = 2 * time.Second
	LiveTimeout  = time.Second
	LiveFailures = 3
	// NodeGrace is how long web and worker may take to exit on SIGTERM.
	NodeGrace = 3 * time.Second
)

func liveness(p probe.Probe) *supervise.Liveness {
	return &supervise.Liveness{Probe: p, Interval: LiveInterval, Timeout: LiveTimeout, Failures: LiveFailures, Grace: NodeGrace}
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
