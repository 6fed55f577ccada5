// Package state is the runtime's on-disk state: runtime.json (who runs,
// which pids and ports) and the single-instance lock beside it.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// State is runtime.json. It outlives a run on purpose: the next start reads
// it to keep the mongo port stable and to sweep children of a dead run.
type State struct {
	PID        int                `json:"pid"` // supervisor pid; 0 after a clean stop
	Version    string             `json:"version"`
	Executable string             `json:"executable,omitempty"`
	Home       string             `json:"home"`
	URL        string             `json:"url,omitempty"`
	StartedAt  time.Time          `json:"startedAt"`
	StoppedAt  *time.Time         `json:"stoppedAt,omitempty"`
	Phase      Phase              `json:"phase"`
	Services   map[string]Service `json:"services"`
	// MongoPort is remembered across runs so the replica-set config and any
	// client that cached the address stay valid.
	MongoPort int `json:"mongoPort,omitempty"`
}

// Phase is where a run is.
type Phase string

// A run goes starting → running → stopping → stopped; failed instead of
// stopped when it ended with an error.
const (
	PhaseStarting Phase = "starting"
	PhaseRunning  Phase = "running"
	PhaseStopping Phase = "stopping"
	PhaseStopped  Phase = "stopped"
	PhaseFailed   Phase = "failed"
)

// Service is one child's last known state.
type Service struct {
	State     string    `json:"state"`
	PID       int       `json:"pid,omitempty"`
	Port      int       `json:"port,omitempty"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// Command is argv[0] and the distinctive arguments, checked against the
	// live process's command line before a stale pid is signalled.
	Command []string `json:"command,omitempty"`
	Dir     string   `json:"dir,omitempty"` // working directory, for the same check
}

// Read loads runtime.json; a missing file is (nil, nil).
func Read(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read runtime state %s: %w", path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse runtime state %s: %w (delete the file if no runtime is running)", path, err)
	}
	return &s, nil
}

// Write replaces path atomically (temp file + rename) so readers never see
// half a file.
func Write(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode runtime state: %w", err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temp file beside path and renames it over path.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
