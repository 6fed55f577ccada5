package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/second-inc/second-release/internal/release/progress"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/second-inc/second-release/internal/npmconf"
)

// Uploader changes the registry. The real one shells out to npm so the
// user's own npm configuration, auth and OTP handling apply.
type Uploader interface {
	// Publish uploads a tarball as it is, under a dist-tag.
	Publish(ctx context.Context, tarball string, a UploadArgs) error
	// SetTag points tag at name@version.
	SetTag(ctx context.Context, name, version, tag string, a UploadArgs) error
	// RemoveTag deletes a dist-tag (best effort callers ignore failures).
	RemoveTag(ctx context.Context, name, tag string, a UploadArgs) error
}

// UploadArgs are the npm flags every change carries.
type UploadArgs struct {
	Registry   string // --registry (and the scope's registry, which npm prefers)
	Scope      string // "@second-inc"
	Access     string // --access, "" leaves npm's default
	Tag        string // --tag for Publish
	OTP        string // --otp
	Provenance bool   // --provenance
}

// ErrOTP means the registry wants a one-time password (npm's EOTP).
var ErrOTP = errors.New("the registry asks for a one-time password (EOTP): pass --otp CODE")

// NPMCLI runs the npm command line.
type NPMCLI struct {
	// Bin is the npm executable, default "npm" from $PATH.
	Bin string
	// Env is the environment npm runs with; nil means os.Environ().
	Env []string
	// Dir is npm's working directory (a project .npmrc there applies).
	Dir string
	// Timeout bounds one npm command, default 10 minutes.
	Timeout time.Duration
	// Redact removes secrets from npm's output before it reaches an error.
	Redact func(string) string
	// Progress, when set, is told how far each tarball's upload has got
	// (see watchUpload).
	Progress progress.Func
}

func (n *NPMCLI) common(a UploadArgs) []string {
	var args []string
	if a.Registry != "" {
		args = append(args, "--registry", a.Registry)
		if a.Scope != "" {
			// npm prefers @scope:registry from the user's .npmrc over --registry.
			args = append(args, "--"+a.Scope+":registry="+a.Registry)
		}
	}
	if a.OTP != "" {
		args = append(args, "--otp", a.OTP)
	}
	return args
}

// Publish implements Uploader: npm publish <tarball>.
func (n *NPMCLI) Publish(ctx context.Context, tarball string, a UploadArgs) error {
	args := []string{"publish", tarball, "--tag", a.Tag}
	if a.Access != "" {
		args = append(args, "--access", a.Access)
	}
	if a.Provenance {
		args = append(args, "--provenance")
	}
	var watch func(pid int) func(error)
	if n.Progress != nil {
		watch = watchUpload(n.Progress, tarball)
	}
	return n.run(ctx, append(args, n.common(a)...), watch)
}

// SetTag implements Uploader: npm dist-tag add name@version tag.
func (n *NPMCLI) SetTag(ctx context.Context, name, version, tag string, a UploadArgs) error {
	return n.run(ctx, append([]string{"dist-tag", "add", name + "@" + version, tag}, n.common(a)...), nil)
}

// RemoveTag implements Uploader: npm dist-tag rm name tag.
func (n *NPMCLI) RemoveTag(ctx context.Context, name, tag string, a UploadArgs) error {
	return n.run(ctx, append([]string{"dist-tag", "rm", name, tag}, n.common(a)...), nil)
}

// run runs npm with args; watch, when set, is called with npm's pid once it
// has started and returns what to call with npm's result.
func (n *NPMCLI) run(ctx context.Context, args []string, watch func(pid int) func(error)) error {
	bin := n.Bin
	if bin == "" {
		bin = "npm"
	}
	timeout := n.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = n.Dir
	env := n.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = npmconf.Quiet(env)
	// Own process group, so a cancelled run takes npm's children with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		ended := func(error) {}
		if watch != nil {
			ended = watch(cmd.Process.Pid)
		}
		err = cmd.Wait()
		ended(err)
	}
	if err == nil {
		return nil
	}
	text := out.String()
	if n.Redact != nil {
		text = n.Redact(text)
	}
	shown := redactArgs(args)
	if strings.Contains(text, "EOTP") || strings.Contains(text, "one-time password") {
		return fmt.Errorf("npm %s: %w", shown, ErrOTP)
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("npm %s: no answer within %s", shown, timeout)
	}
	return fmt.Errorf("npm %s: %w: %s", shown, err, lastLines(text, 12))
}

// redactArgs hides the OTP from messages.
func redactArgs(args []string) string {
	out := make([]string, len(args))
	copy(out, args)
	for i := range out {
		if i > 0 && out[i-1] == "--otp" {
			out[i] = "******"
		}
	}
	return strings.Join(out, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
