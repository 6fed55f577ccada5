package devstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/local/devproxy"
	"github.com/second-inc/second-release/internal/local/state"
)

// Record is one running dev stack as the machine-wide registry holds it.
type Record struct {
	Info
	Worktree  string    `json:"worktree"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
}

// lockPath is the lock the stack's `second dev` holds while it runs.
func (r Record) lockPath() string { return home.Layout{Root: r.DataDir}.LockFile() }

// Registry is the directory of running dev stacks (<home>/dev/stacks), one
// JSON file per dev id. A record counts only while its `second dev` holds
// its worktree's lock, so a killed one drops out at once. It serves the
// proxy's route table, with a short cache so a request costs no syscalls.
type Registry struct {
	Dir string

	mu     sync.Mutex
	cache  map[string]Record
	loaded time.Time
}

// RegistryDir is where a home keeps its registry.
func RegistryDir(l home.Layout) string { return filepath.Join(l.Root, "dev", "stacks") }

// recordJSON is Record on disk (Info has no json tags of its own).
type recordJSON struct {
	DevID      string    `json:"devId"`
	Worktree   string    `json:"worktree"`
	URL        string    `json:"url"`
	DataDir    string    `json:"dataDir"`
	WebPort    int       `json:"webPort"`
	WorkerPort int       `json:"workerPort"`
	MongoPort  int       `json:"mongoPort"`
	RedisPort  int       `json:"redisPort"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"startedAt"`
}

// Put records a stack (replacing its earlier record).
func (g *Registry) Put(r Record) error {
	if err := os.MkdirAll(g.Dir, 0o700); err != nil {
		return fmt.Errorf("create dev registry %s: %w", g.Dir, err)
	}
	b, _ := json.MarshalIndent(recordJSON{r.DevID, r.Worktree, r.URL, r.DataDir, r.WebPort, r.WorkerPort, r.MongoPort, r.RedisPort, r.PID, r.StartedAt}, "", "  ")
	if err := state.WriteFileAtomic(filepath.Join(g.Dir, r.DevID+".json"), append(b, '\n'), 0o600); err != nil {
		return err
	}
	g.invalidate()
	return nil
}

// Reserve runs choose holding the registry's lock, with the ports every
// other live stack has (they may not listen on them yet: two stacks starting
// at once must not both pick 3000), and records what it returns.
func (g *Registry) Reserve(self string, choose func(taken map[int]bool) (Record, error)) error {
	if err := os.MkdirAll(g.Dir, 0o700); err != nil {
		return fmt.Errorf("create dev registry %s: %w", g.Dir, err)
	}
	lockPath := filepath.Join(g.Dir, ".lock")
	deadline := time.Now().Add(time.Minute)
	var lock *state.Lock
	for {
		l, err := state.TryLock(lockPath)
		if err == nil {
			lock = l
			break
		}
		if !errors.Is(err, state.ErrLocked) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dev registry lock %s is held by pid %d for over a minute", lockPath, state.Holder(lockPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer lock.Release()
	recs, err := g.Running()
	if err != nil {
		return err
	}
	taken := map[int]bool{}
	for _, r := range recs {
		if r.Worktree == self {
			continue // our own record from a run that was killed
		}
		for _, p := range []int{r.WebPort, r.WorkerPort, r.MongoPort, r.RedisPort} {
			taken[p] = true
		}
	}
	rec, err := choose(taken)
	if err != nil {
		return err
	}
	return g.Put(rec)
}

// Remove drops id's record if it still belongs to pid.
func (g *Registry) Remove(id string, pid int) {
	p := filepath.Join(g.Dir, id+".json")
	if r, err := readRecord(p); err == nil && r.PID == pid {
		_ = os.Remove(p)
	}
	g.invalidate()
}

func (g *Registry) invalidate() {
	g.mu.Lock()
	g.loaded = time.Time{}
	g.mu.Unlock()
}

func readRecord(path string) (Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Record{}, err
	}
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Record{}, fmt.Errorf("read %s: %w", path, err)
	}
	return Record{Info: Info{URL: j.URL, WebPort: j.WebPort, WorkerPort: j.WorkerPort, MongoPort: j.MongoPort, RedisPort: j.RedisPort, DevID: j.DevID, DataDir: j.DataDir},
		Worktree: j.Worktree, PID: j.PID, StartedAt: j.StartedAt}, nil
}

// Running returns the live stacks sorted by dev id, deleting the records
// of stacks whose `second dev` is gone.
func (g *Registry) Running() ([]Record, error) {
	entries, err := os.ReadDir(g.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dev registry %s: %w", g.Dir, err)
	}
	var out []Record
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(g.Dir, e.Name())
		r, err := readRecord(p)
		if err != nil {
			continue // being written, or foreign: not a route
		}
		if !state.Held(r.lockPath()) {
			_ = os.Remove(p)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DevID < out[j].DevID })
	return out, nil
}

// cacheFor bounds how stale a route may be; a miss reloads sooner.
const (
	cacheFor    = 500 * time.Millisecond
	missRefresh = 50 * time.Millisecond
)

// Lookup is the proxy's route: the web port of dev id.
func (g *Registry) Lookup(id string) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.loaded) > cacheFor {
		g.reload()
	}
	r, ok := g.cache[id]
	if !ok && time.Since(g.loaded) > missRefresh {
		g.reload() // a stack that just started
		r, ok = g.cache[id]
	}
	return r.WebPort, ok
}

// List is every live stack as a proxy backend.
func (g *Registry) List() []devproxy.Backend {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reload()
	out := make([]devproxy.Backend, 0, len(g.cache))
	for id, r := range g.cache {
		out = append(out, devproxy.Backend{ID: id, Port: r.WebPort})
	}
	return out
}

// reload runs with g.mu held.
func (g *Registry) reload() {
	recs, _ := g.Running()
	m := make(map[string]Record, len(recs))
	for _, r := range recs {
		m[r.DevID] = r
	}
	g.cache, g.loaded = m, time.Now()
}
