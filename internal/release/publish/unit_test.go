package publish_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/config"
	"github.com/second-inc/second-release/internal/release/publish"
)

// memRegistry is an in-memory registry: the reader and the uploader in one,
// recording every change in order.
type memRegistry struct {
	mu       sync.Mutex
	pkgs     map[string]*npmregistry.PackageInfo
	log      []string
	otp      string // when set, changes need this one-time password
	user     string
	failNext map[string]error
}

func newMem() *memRegistry {
	return &memRegistry{pkgs: map[string]*npmregistry.PackageInfo{}, user: "me", failNext: map[string]error{}}
}

func (m *memRegistry) Ping(context.Context) error             { return nil }
func (m *memRegistry) Whoami(context.Context) (string, error) { return m.user, nil }
func (m *memRegistry) Package(_ context.Context, n string) (*npmregistry.PackageInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pkgs[n]
	if p == nil {
		return nil, nil
	}
	cp := &npmregistry.PackageInfo{Versions: map[string]string{}, DistTags: map[string]string{}}
	for k, v := range p.Versions {
		cp.Versions[k] = v
	}
	for k, v := range p.DistTags {
		cp.DistTags[k] = v
	}
	return cp, nil
}

func (m *memRegistry) Publish(_ context.Context, tarball string, a publish.UploadArgs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.otp != "" && a.OTP != m.otp {
		return publish.ErrOTP
	}
	name := filepath.Base(tarball)
	if err := m.failNext[name]; err != nil {
		delete(m.failNext, name)
		return err
	}
	_, integ, _, _ := artifact.Digests(tarball)
	pkgName, version := nameOf(tarball)
	p := m.pkgs[pkgName]
	if p == nil {
		p = &npmregistry.PackageInfo{Versions: map[string]string{}, DistTags: map[string]string{}}
		m.pkgs[pkgName] = p
	}
	p.Versions[version] = integ
	p.DistTags[a.Tag] = version
	m.log = append(m.log, "publish "+pkgName+" tag="+a.Tag)
	return nil
}

func (m *memRegistry) SetTag(_ context.Context, name, version, tag string, a publish.UploadArgs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.otp != "" && a.OTP != m.otp {
		return publish.ErrOTP
	}
	m.pkgs[name].DistTags[tag] = version
	m.log = append(m.log, "tag "+name+" "+tag)
	return nil
}

func (m *memRegistry) RemoveTag(_ context.Context, name, tag string, _ publish.UploadArgs) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pkgs[name].DistTags, tag)
	return nil
}

// nameOf reads name and version from the tarball's package.json, as a registry would.
func nameOf(tarball string) (string, string) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", ""
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return "", ""
		}
		if h.Name == "package/package.json" {
			var pj struct{ Name, Version string }
			json.NewDecoder(tr).Decode(&pj)
			return pj.Name, pj.Version
		}
	}
}

func memOptions(t *testing.T, dist string, m *memRegistry) publish.Options {
	return publish.Options{Dist: dist, Registry: "http://registry.invalid/", Reader: m, Uploader: m, Env: []string{"HOME=" + t.TempDir()}}
}

func TestOrderAndTags(t *testing.T) {
	m := newMem()
	dist := release(t, "order", "1.0.0", "a")
	l, err := publish.Run(context.Background(), memOptions(t, dist, m))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"publish @second-inc/order-cli-local-darwin-arm64 tag=release-staging",
		"publish @second-inc/order-cli-local-linux-x64 tag=release-staging",
		"publish @second-inc/order-cli tag=release-staging",
		"tag @second-inc/order-cli-local-darwin-arm64 latest",
		"tag @second-inc/order-cli-local-linux-x64 latest",
		"tag @second-inc/order-cli latest",
	}
	if strings.Join(m.log, "\n") != strings.Join(want, "\n") {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(m.log, "\n"), strings.Join(want, "\n"))
	}
	if !l.Complete {
		t.Error("not complete")
	}
}

func TestOTPPrompt(t *testing.T) {
	m := newMem()
	m.otp = "123456"
	dist := release(t, "otp", "1.0.0", "a")
	asked := 0
	o := memOptions(t, dist, m)
	o.Prompt = func(context.Context, string) (string, error) { asked++; return "123456\n", nil }
	if _, err := publish.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if asked != 1 {
		t.Errorf("asked for the OTP %d times, want once (then reused)", asked)
	}

	// No terminal: the EOTP error says to pass --otp.
	m2 := newMem()
	m2.otp = "123456"
	o = memOptions(t, release(t, "otp2", "1.0.0", "a"), m2)
	_, err := publish.Run(context.Background(), o)
	if !errors.Is(err, publish.ErrOTP) || !strings.Contains(err.Error(), "--otp") {
		t.Errorf("without a prompt: %v", err)
	}
	o.OTP = "123456"
	if _, err := publish.Run(context.Background(), o); err != nil {
		t.Errorf("with --otp: %v", err)
	}
}

func TestTamperedTarballRefused(t *testing.T) {
	dist := release(t, "tamper", "1.0.0", "a")
	p := filepath.Join(dist, "npm", "second-inc-tamper-cli-1.0.0.tgz")
	if err := os.WriteFile(p, []byte("not what was built"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := publish.Run(context.Background(), memOptions(t, dist, newMem()))
	if err == nil || !strings.Contains(err.Error(), "changed since it was built") {
		t.Errorf("tampered tarball: %v", err)
	}
}

func TestNPMCLIErrors(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "npm")
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'npm error code EOTP' >&2\nexit 1\n"), 0o755)
	n := &publish.NPMCLI{Bin: fake, Env: []string{}}
	err := n.Publish(context.Background(), "/x.tgz", publish.UploadArgs{Tag: "t", OTP: "999999"})
	if !errors.Is(err, publish.ErrOTP) || strings.Contains(err.Error(), "999999") {
		t.Errorf("EOTP: %v", err)
	}
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"args: $*\"\necho 'npm error 403 Forbidden' >&2\nexit 1\n"), 0o755)
	err = n.Publish(context.Background(), "/x.tgz", publish.UploadArgs{Tag: "t", Registry: "http://r/", Scope: "@s", Access: "restricted"})
	for _, want := range []string{"403 Forbidden", "--@s:registry=http://r/", "--access restricted"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestMakePlan(t *testing.T) {
	m := newMem()
	dist := release(t, "plan", "1.0.0", "a")
	cfg := &config.Config{Scope: "@second-inc", Launcher: "plan-cli", PayloadPrefix: "plan-cli-local"}
	// linux-x64 is already in with other bytes; darwin-arm64 with the same bytes.
	_, same, _, _ := artifact.Digests(filepath.Join(dist, "npm", "second-inc-plan-cli-local-darwin-arm64-1.0.0.tgz"))
	m.pkgs["@second-inc/plan-cli-local-darwin-arm64"] = &npmregistry.PackageInfo{Versions: map[string]string{"1.0.0": same}, DistTags: map[string]string{"latest": "0.9.0"}}
	m.pkgs["@second-inc/plan-cli-local-linux-x64"] = &npmregistry.PackageInfo{Versions: map[string]string{"1.0.0": "sha512-other"}, DistTags: map[string]string{}}
	p, err := publish.MakePlan(context.Background(), publish.PlanOptions{
		Config: cfg, Version: "1.0.0", Platforms: []string{"darwin-arm64", "linux-x64"}, Publish: memOptions(t, dist, m),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"@second-inc/plan-cli-local-darwin-arm64": "skip (already published)",
		"@second-inc/plan-cli-local-linux-x64":    "conflict",
		"@second-inc/plan-cli":                    "publish",
	}
	for _, pp := range p.Packages {
		if pp.Action != want[pp.Name] {
			t.Errorf("%s: %s, want %s", pp.Name, pp.Action, want[pp.Name])
		}
	}
	if !p.Built || p.Tag != "latest" || p.Packages[0].TagNow != "0.9.0" {
		t.Errorf("plan %+v", p)
	}
	var sb strings.Builder
	p.WriteTable(&sb)
	if !strings.Contains(sb.String(), "publish the launcher @second-inc/plan-cli@1.0.0") || strings.Contains(sb.String(), "build 1.0.0") {
		t.Errorf("steps:\n%s", sb.String())
	}
}

// flakyReads fails the registry reads numbered from..to (1-based, to 0: no
// end) and counts every read.
type flakyReads struct {
	*memRegistry
	mu       sync.Mutex
	reads    int
	from, to int
}

func (f *flakyReads) Package(ctx context.Context, n string) (*npmregistry.PackageInfo, error) {
	f.mu.Lock()
	f.reads++
	k := f.reads
	f.mu.Unlock()
	if k >= f.from && (f.to == 0 || k <= f.to) {
		return nil, errors.New("read: connection reset by peer")
	}
	return f.memRegistry.Package(ctx, n)
}

// TestVisibilityWatcherReportsFailedPolls: failed registry reads while
// waiting for packages to become visible are logged and counted, and a
// timeout says how many failed and with what.
func TestVisibilityWatcherReportsFailedPolls(t *testing.T) {
	// Preflight reads the three packages (reads 1-3); the first visibility
	// round for the two payloads (reads 4-5) fails, the retry succeeds.
	dist := release(t, "watch", "1.0.0", "a")
	f := &flakyReads{memRegistry: newMem(), from: 4, to: 5}
	var log strings.Builder
	o := memOptions(t, dist, f.memRegistry)
	o.Reader = f
	o.Log = slog.New(slog.NewTextHandler(&log, nil))
	if _, err := publish.Run(context.Background(), o); err != nil {
		t.Fatalf("publish with two failed visibility reads: %v\n%s", err, log.String())
	}
	if n := strings.Count(log.String(), `msg="visibility check failed"`); n != 2 {
		t.Errorf("logged %d failed visibility checks, want 2:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "failed_polls=2") {
		t.Errorf("log does not count the failed polls:\n%s", log.String())
	}

	// Every read after the preflight fails: the timeout names the count and the error.
	dist = release(t, "watchdead", "1.0.0", "a")
	f = &flakyReads{memRegistry: newMem(), from: 4}
	o = memOptions(t, dist, f.memRegistry)
	o.Reader, o.VisibleTimeout = f, time.Second
	_, err := publish.Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "registry reads failed") || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("publish with every visibility read failing = %v, want the failed reads counted and the last error", err)
	}
	f.mu.Lock()
	reads := f.reads
	f.mu.Unlock()
	if want := fmt.Sprintf("%d of %d registry reads failed", reads-3, reads-3); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
}
