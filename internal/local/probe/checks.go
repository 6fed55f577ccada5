package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// attemptTimeout bounds one check so a hung peer cannot eat the whole
// readiness budget.
const attemptTimeout = 2 * time.Second

func attemptCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, attemptTimeout)
}

// HTTP is ready when GET URL answers 200.
type HTTP struct {
	URL string
	// Client defaults to one without proxies (health URLs are loopback;
	// an HTTP_PROXY in the user's environment must not intercept them)
	// that does not follow redirects.
	Client *http.Client
}

var loopbackClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Check performs one GET.
func (h HTTP) Check(ctx context.Context) error {
	ctx, cancel := attemptCtx(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return Permanent(fmt.Errorf("probe %s: %w", h.URL, err))
	}
	c := h.Client
	if c == nil {
		c = loopbackClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	}
	return nil
}

// Redis is ready when PING on Addr answers +PONG. While redis-server loads
// its dataset (AOF/RDB) it answers -LOADING, which means wait; it accepts
// connections before it can serve, so a TCP probe is not enough.
type Redis struct {
	Addr string
	// Password, if set, is sent with AUTH first (as Username when that is
	// set, else as the default user). It never appears in errors.
	Username string
	Password string
}

// Check sends one PING (after AUTH if needed) in RESP over a raw connection.
func (p Redis) Check(ctx context.Context) error {
	ctx, cancel := attemptCtx(ctx)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		return fmt.Errorf("connect redis %s: %w", p.Addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	br := bufio.NewReader(c)
	if p.Password != "" {
		auth := []string{"AUTH", p.Password}
		if p.Username != "" {
			auth = []string{"AUTH", p.Username, p.Password}
		}
		if _, err := io.WriteString(c, respCommand(auth...)); err != nil {
			return fmt.Errorf("redis %s: send AUTH: %w", p.Addr, err)
		}
		line, err := readLine(br)
		if err != nil {
			return fmt.Errorf("redis %s: read AUTH reply: %w", p.Addr, err)
		}
		if line != "+OK" {
			// The reply to a wrong password will not change by waiting.
			return Permanent(fmt.Errorf("redis %s: AUTH refused: %s", p.Addr, firstWord(line)))
		}
	}
	if _, err := io.WriteString(c, respCommand("PING")); err != nil {
		return fmt.Errorf("redis %s: send PING: %w", p.Addr, err)
	}
	line, err := readLine(br)
	if err != nil {
		return fmt.Errorf("redis %s: read PING reply: %w", p.Addr, err)
	}
	switch {
	case line == "+PONG":
		return nil
	case strings.HasPrefix(line, "-LOADING"):
		return fmt.Errorf("redis %s: still loading its dataset", p.Addr)
	case strings.HasPrefix(line, "-NOAUTH"), strings.HasPrefix(line, "-WRONGPASS"):
		return Permanent(fmt.Errorf("redis %s: needs a password: %s", p.Addr, line))
	default:
		return fmt.Errorf("redis %s: PING answered %q", p.Addr, line)
	}
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && line == "" {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i > 0 {
		return s[:i]
	}
	return s
}
