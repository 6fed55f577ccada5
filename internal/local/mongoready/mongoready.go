// Package mongoready turns a freshly started single-node mongod into a
// writable replica-set primary (initiate, or repair a config that names an
// old address), shuts it down politely, and recognises the log lines that
// mean mongod cannot start. It is the Mongo-specific part of the runtime's
// supervision, kept out of the generic supervisor.
package mongoready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Server error codes this package acts on.
const (
	codeAlreadyInitialized      = 23
	codeNoReplicationEnabled    = 76
	codeInvalidReplicaSetConfig = 93 // also: this node is REMOVED from its config
	codeNotYetInitialized       = 94
)

// DefaultReplSet is the replica-set name the runtime starts mongod with.
const DefaultReplSet = "rs0"

// Options says which mongod to prepare.
type Options struct {
	// Port of the mongod on 127.0.0.1. Required.
	Port int
	// ReplSet is the --replSet name (default "rs0").
	ReplSet string
	// Log receives what was done (initiate, reconfig); default discarded.
	Log *slog.Logger
	// Poll is how often states are re-read while waiting (default 100 ms).
	Poll time.Duration
	// Auth, when set, is a mongod started with --keyFile (access control
	// on): Ensure also creates its users (see EnsureUsers).
	Auth *Auth

	bootstrapping bool // unauthenticated, under the localhost exception
}

func (o *Options) defaults() error {
	if o.Port <= 0 || o.Port > 65535 {
		return fmt.Errorf("mongoready: invalid port %d", o.Port)
	}
	if o.ReplSet == "" {
		o.ReplSet = DefaultReplSet
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	return nil
}

// Addr is the member address the runtime uses for a mongod on port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// connect opens a direct connection: the node may not be (or believe it is
// not) a member of any set yet, so the driver must not discover a topology.
// cred, when not nil, authenticates every connection against admin.
func connect(port int, cred *Credential) (*mongo.Client, error) {
	o := options.Client().
		SetHosts([]string{Addr(port)}).
		SetDirect(true).
		SetAppName("second-runtime").
		SetMaxPoolSize(2).
		SetConnectTimeout(2 * time.Second).
		SetServerSelectionTimeout(2 * time.Second)
	if cred != nil {
		o.SetAuth(options.Credential{AuthSource: "admin", Username: cred.Username, Password: cred.Password})
	}
	c, err := mongo.Connect(o)
	if err != nil {
		return nil, fmt.Errorf("connect to mongod on %s: %w", Addr(port), err)
	}
	return c, nil
}

func disconnect(c *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.Disconnect(ctx)
}

// Ensure makes the mongod on 127.0.0.1:Port a writable primary of a
// single-member replica set, then returns:
//   - not initialized (code 94): replSetInitiate with the one member
//     127.0.0.1:Port;
//   - a config whose only member names another address (the port changed
//     since the last run; the node is then REMOVED, code 93): forced
//     replSetReconfig naming 127.0.0.1:Port, keeping the set's id;
//   - a config with several members: refused, it is not ours to change;
//   - then it waits until hello says isWritablePrimary.
//
// It is idempotent and fast when the node is already primary, so it can
// run after every (re)start. ctx bounds the whole wait.
func Ensure(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if o.Auth == nil {
		return ensureReplSet(ctx, o, nil)
	}
	return ensureWithAuth(ctx, o)
}

// ensureReplSet runs the replica-set steps as cred (nil: unauthenticated,
// which a mongod without access control or the localhost exception allows).
func ensureReplSet(ctx context.Context, o Options, cred *Credential) error {
	c, err := connect(o.Port, cred)
	if err != nil {
		return err
	}
	defer disconnect(c)
	return ensureReplSetOn(ctx, o, c)
}

// ensureReplSetOn runs the replica-set steps over an open client.
func ensureReplSetOn(ctx context.Context, o Options, c *mongo.Client) error {
	admin := c.Database("admin")
	addr := Addr(o.Port)

	var last error
	wait := func() error {
		select {
		case <-ctx.Done():
			if last == nil {
				last = context.Cause(ctx)
			}
			return fmt.Errorf("mongod on %s did not become a writable primary: %w", addr, last)
		case <-time.After(o.Poll):
			return nil
		}
	}
	for {
		last = step(ctx, admin, o, addr)
		if last == nil {
			return nil
		}
		if errors.Is(last, errRefused) {
			return last
		}
		if err := wait(); err != nil {
			return err
		}
	}
}

// errRefused marks conditions waiting cannot fix.
var errRefused = errors.New("refusing to change the replica set")

// errNotAuthorized: access control is on and this connection may not
// manage the replica set; waiting cannot fix it either.
var errNotAuthorized = fmt.Errorf("not authorized: %w", errRefused)

// step does one round: read state, fix what needs fixing, and return nil
// only once the node is a writable primary.
func step(ctx context.Context, admin *mongo.Database, o Options, addr string) error {
	err := admin.RunCommand(ctx, bson.D{{Key: "replSetGetStatus", Value: 1}}).Err()
	switch code := errCode(err); {
	case err == nil && o.bootstrapping:
		// The localhost exception does not cover reading the config; a
		// set that answers its status names this node.
		return writablePrimary(ctx, admin)
	case err == nil:
		cfg, err := getConfig(ctx, admin)
		if err != nil {
			return err
		}
		if err := checkSingle(cfg, addr); err != nil {
			return err
		}
		if h := cfg.memberHost(); h != addr {
			return reconfig(ctx, admin, o, cfg, addr)
		}
		return writablePrimary(ctx, admin)
	case code == codeNotYetInitialized && strings.Contains(err.Error(), "starting up"):
		// mongod answers 94 too while it is still loading a stored config;
		// initiating then would race it. Wait.
		return fmt.Errorf("replSetGetStatus on %s: %w", addr, err)
	case code == codeNotYetInitialized:
		o.Log.Info("initiating replica set", "replSet", o.ReplSet, "member", addr)
		init := bson.D{
			{Key: "_id", Value: o.ReplSet},
			{Key: "members", Value: bson.A{bson.D{{Key: "_id", Value: 0}, {Key: "host", Value: addr}}}},
		}
		err := admin.RunCommand(ctx, bson.D{{Key: "replSetInitiate", Value: init}}).Err()
		if err != nil && errCode(err) != codeAlreadyInitialized {
			return fmt.Errorf("replSetInitiate on %s: %w", addr, err)
		}
		return errors.New("replica set initiated; waiting for it to elect a primary")
	case code == codeInvalidReplicaSetConfig:
		// The stored config does not name this node: the port changed.
		cfg, err := getConfig(ctx, admin)
		if err != nil && o.bootstrapping {
			return fmt.Errorf("mongod on %s: its replica set config names another address, and without users yet it cannot be read to repair it (%v): %w; start once on the port recorded in runtime.json", addr, err, errRefused)
		}
		if err != nil {
			return err
		}
		if err := checkSingle(cfg, addr); err != nil {
			return err
		}
		return reconfig(ctx, admin, o, cfg, addr)
	case code == codeUnauthorized:
		return fmt.Errorf("replSetGetStatus on %s: %v: %w", addr, err, errNotAuthorized)
	case code == codeNoReplicationEnabled:
		return fmt.Errorf("mongod on %s was not started with --replSet %s: %w", addr, o.ReplSet, errRefused)
	default:
		// Not up yet, or between states (STARTUP2, RECOVERING): wait.
		return fmt.Errorf("replSetGetStatus on %s: %w", addr, err)
	}
}

// config is a replica-set config document, kept whole so a forced
// reconfig changes only the members and version.
type config struct{ doc bson.D }

func (c config) get(key string) any {
	for _, e := range c.doc {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func (c config) members() []bson.D {
	arr, _ := c.get("members").(bson.A)
	out := make([]bson.D, 0, len(arr))
	for _, m := range arr {
		if d, ok := m.(bson.D); ok {
			out = append(out, d)
		}
	}
	return out
}

func field(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func (c config) memberHost() string {
	m := c.members()
	if len(m) != 1 {
		return ""
	}
	h, _ := field(m[0], "host").(string)
	return h
}

func (c config) version() int64 {
	switch v := c.get("version").(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func checkSingle(c config, addr string) error {
	m := c.members()
	if len(m) <= 1 {
		return nil
	}
	hosts := make([]string, 0, len(m))
	for _, d := range m {
		h, _ := field(d, "host").(string)
		hosts = append(hosts, h)
	}
	return fmt.Errorf("mongod on %s has a %d-member replica set config (%s): %w; "+
		"this data directory belongs to another deployment — point the runtime at a fresh home or remove the data dir",
		addr, len(m), strings.Join(hosts, ", "), errRefused)
}

func getConfig(ctx context.Context, admin *mongo.Database) (config, error) {
	var res struct {
		Config bson.D `bson:"config"`
	}
	err := admin.RunCommand(ctx, bson.D{{Key: "replSetGetConfig", Value: 1}}).Decode(&res)
	if err == nil && len(res.Config) > 0 {
		return config{res.Config}, nil
	}
	// Older servers refuse replSetGetConfig on a REMOVED node; the config
	// is also the one document in local.system.replset.
	var doc bson.D
	ferr := admin.Client().Database("local").Collection("system.replset").FindOne(ctx, bson.D{}).Decode(&doc)
	if ferr != nil {
		return config{}, fmt.Errorf("read replica set config: %w", errors.Join(err, ferr))
	}
	return config{doc}, nil
}

// reconfig force-replaces the single member's host with addr.
func reconfig(ctx context.Context, admin *mongo.Database, o Options, c config, addr string) error {
	old := c.memberHost()
	member := bson.D{{Key: "_id", Value: 0}, {Key: "host", Value: addr}}
	if m := c.members(); len(m) == 1 {
		member = make(bson.D, 0, len(m[0]))
		for _, e := range m[0] {
			if e.Key == "host" {
				e.Value = addr
			}
			member = append(member, e)
		}
	}
	doc := make(bson.D, 0, len(c.doc))
	for _, e := range c.doc {
		switch e.Key {
		case "members":
			e.Value = bson.A{member}
		case "version":
			e.Value = c.version() + 1
		}
		doc = append(doc, e)
	}
	o.Log.Info("repairing replica set config for a new address", "from", old, "to", addr)
	err := admin.RunCommand(ctx, bson.D{{Key: "replSetReconfig", Value: doc}, {Key: "force", Value: true}}).Err()
	if err != nil {
		return fmt.Errorf("forced replSetReconfig of %s from %q to %q: %w", c.get("_id"), old, addr, err)
	}
	return errors.New("replica set reconfigured; waiting for a primary")
}

func writablePrimary(ctx context.Context, admin *mongo.Database) error {
	var hello struct {
		IsWritablePrimary bool `bson:"isWritablePrimary"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if !hello.IsWritablePrimary {
		return errors.New("not a writable primary yet")
	}
	return nil
}

func errCode(err error) int32 {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// Ping reports whether mongod on port answers ping (the readiness probe).
func Ping(ctx context.Context, port int) error {
	// Until mongod listens, fail at once: a driver client whose first
	// check is refused waits out its 500 ms minimum heartbeat before it
	// tries again, and start-to-ready would feel every bit of it.
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", Addr(port))
	if err != nil {
		return fmt.Errorf("mongod on %s is not listening yet: %w", Addr(port), err)
	}
	conn.Close()
	c, err := connect(port, nil)
	if err != nil {
		return err
	}
	defer disconnect(c)
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping mongod on %s: %w", Addr(port), err)
	}
	return nil
}

// Shutdown sends mongod on port the shutdown command, the clean way to stop
// it (the supervisor's Stop.Before hook; SIGTERM follows anyway), as admin
// (nil without access control). mongod never replies: the connection
// dropping is success. force is set because a lone primary has no
// secondaries to wait for.
func Shutdown(ctx context.Context, port int, admin *Credential) error {
	c, err := connect(port, admin)
	if err != nil {
		return err
	}
	defer disconnect(c)
	err = c.Database("admin").RunCommand(ctx, bson.D{{Key: "shutdown", Value: 1}, {Key: "force", Value: true}}).Err()
	if err == nil || mongo.IsNetworkError(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return fmt.Errorf("shutdown mongod on %s: %w", Addr(port), err)
}

// Pinger pings one mongod over a client it keeps, for liveness checks
// every few seconds: a fresh client per check (Ping) costs a handshake,
// a topology monitor and a connection each time. The client is opened on
// the first Check and reconnects by itself after mongod restarts.
type Pinger struct {
	Port int

	mu sync.Mutex
	c  *mongo.Client
}

// Check pings once; ctx bounds it (a stopped mongod never answers).
func (p *Pinger) Check(ctx context.Context) error {
	p.mu.Lock()
	if p.c == nil {
		c, err := mongo.Connect(options.Client().
			SetHosts([]string{Addr(p.Port)}).
			SetDirect(true).
			SetAppName("second-runtime-liveness").
			SetMaxPoolSize(1).
			SetHeartbeatInterval(time.Minute).
			SetConnectTimeout(2 * time.Second))
		if err != nil {
			p.mu.Unlock()
			return fmt.Errorf("connect to mongod on %s: %w", Addr(p.Port), err)
		}
		p.c = c
	}
	c := p.c
	p.mu.Unlock()
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping mongod on %s: %w", Addr(p.Port), err)
	}
	return nil
}

// Close disconnects the kept client.
func (p *Pinger) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c != nil {
		disconnect(p.c)
		p.c = nil
	}
}
