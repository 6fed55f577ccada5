package runtime

// Readiness probes for the four services. Until internal/probe grows its
// HTTP/Redis constructors these are small local ones built on probe.Func.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/second-inc/second-release/internal/probe"
)

func httpProbe(url string) probe.Probe {
	client := &http.Client{Timeout: 2 * time.Second}
	return probe.Func(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return probe.Permanent(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

func tcpProbe(port int) probe.Probe {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return probe.Func(func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// redisProbe is ready only on +PONG; -LOADING (replaying the AOF) means wait.
func redisProbe(port int) probe.Probe {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return probe.Func(func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line = strings.TrimSpace(line); line != "+PONG" {
			return fmt.Errorf("redis answered %q to PING", line)
		}
		return nil
	})
}
