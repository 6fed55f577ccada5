package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/home"
	"github.com/second-inc/second-release/internal/secrets"
)

// controlInfo is the part of local-control.json (contract §5) a client needs.
type controlInfo struct {
	URL       string `json:"url"`
	PID       int    `json:"pid"`
	TokenPath string `json:"tokenPath"`
}

// SecretFiles lists the secret files of a home.
func SecretFiles(l home.Layout) []string {
	var out []string
	for _, s := range secrets.Specs() {
		out = append(out, l.Secret(s.File))
	}
	return out
}

// controlRequest calls the local control server of a home with its token.
func controlRequest(ctx context.Context, l home.Layout, method, path string) ([]byte, error) {
	b, err := os.ReadFile(l.ControlFile())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.ControlFile(), err)
	}
	var info controlInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("parse %s: %w", l.ControlFile(), err)
	}
	if !strings.HasPrefix(info.URL, "http://127.0.0.1:") && !strings.HasPrefix(info.URL, "http://localhost:") && !strings.HasPrefix(info.URL, "http://[::1]:") {
		return nil, fmt.Errorf("%s: url %q is not a loopback address; refusing to send the token there", l.ControlFile(), info.URL)
	}
	token := os.Getenv("SECOND_LOCAL_CLI_TOKEN")
	if token == "" {
		tp := info.TokenPath
		if tp == "" {
			tp = l.Secret(home.SecretControlToken)
		}
		tb, err := os.ReadFile(tp)
		if err != nil {
			return nil, fmt.Errorf("read control token: %w", err)
		}
		token = strings.TrimSpace(string(tb))
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(info.URL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control server %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("control server %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("control server %s: %s", path, resp.Status)
	}
	return body, nil
}

// ControlStatus asks the control server for the status; an error means
// the caller should fall back to ReadStatus.
func ControlStatus(ctx context.Context, l home.Layout) (Status, error) {
	body, err := controlRequest(ctx, l, http.MethodGet, "/status")
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return Status{}, fmt.Errorf("control server /status: %w", err)
	}
	if st.Services == nil || st.Home == "" {
		return Status{}, errors.New("control server /status: not a runtime status")
	}
	return st, nil
}

// ControlStop asks the control server to stop the runtime; it returns once
// the request is accepted, not when the runtime has stopped.
func ControlStop(ctx context.Context, l home.Layout) error {
	_, err := controlRequest(ctx, l, http.MethodPost, "/stop")
	return err
}
