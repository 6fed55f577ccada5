package cut_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/npmconf"
	"github.com/second-inc/second-release/internal/npmregistry"
	"github.com/second-inc/second-release/internal/release/artifact"
	"github.com/second-inc/second-release/internal/release/cut"
	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/release/verdaccio"
	"github.com/second-inc/second-release/internal/testsupport"
)

func TestCutStopsAndResumes(t *testing.T) {
	testsupport.Tool(t, "npm")
	srv, token := testsupport.Verdaccio(t, "@second-inc")
	home := t.TempDir()
	rc := filepath.Join(home, ".npmrc")
	if err := verdaccio.WriteNpmrcFor(rc, srv.URL, token, "@second-inc"); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "npm_config_userconfig=" + rc,
		"npm_config_cache=" + filepath.Join(home, "cache"), "npm_config_update_notifier=false"}
	reg := &npmregistry.Client{Registry: srv.URL}
	if conf, err := loadConf(rc); err == nil {
		reg.Config = conf
	} else {
		t.Fatal(err)
	}

	dist := t.TempDir()
	const version = "1.4.0"
	build := testsupport.FakeRelease(t, dist, "cut", version, version)
	calls := map[string]int{}
	signErr := errors.New("cosign: key password wrong")
	o := cut.Options{
		Version: version, Dist: dist,
		Build:   func(ctx context.Context) (*artifact.Release, error) { calls["build"]++; return build(ctx) },
		Publish: publish.Options{Env: env, Access: "restricted", ProjectDir: home},
		Images:  func(context.Context) error { calls["images"]++; return nil },
		Sign:    func(context.Context) error { calls["sign"]++; return signErr },
		Verify:  func(context.Context) error { calls["verify"]++; return nil },
	}
	st, err := cut.Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "sign") || !strings.Contains(st.Next, "release cut "+version) {
		t.Fatalf("first cut: %v (next %q)", err, st.Next)
	}
	// Every package is in, but no tag moved and verify never ran.
	info, err := reg.Package(context.Background(), "@second-inc/cut-cli")
	if err != nil || info == nil || info.Versions[version] == "" {
		t.Fatalf("launcher not published by the failed cut: %v %v", info, err)
	}
	// (A package's very first version becomes latest at once: the registry
	// never leaves a package without latest. Later versions wait for the tags step.)
	if calls["verify"] != 0 {
		t.Error("verify ran after sign failed")
	}
	var sb strings.Builder
	st.WriteTable(&sb)
	if !strings.Contains(sb.String(), "sign     failed") {
		t.Errorf("table:\n%s", sb.String())
	}

	signErr = nil
	st, err = cut.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Complete {
		t.Errorf("state %+v", st)
	}
	want := map[string]int{"build": 1, "images": 1, "sign": 2, "verify": 1}
	for k, v := range want {
		if calls[k] != v {
			t.Errorf("%s ran %d times, want %d (the resumed cut must not redo done steps)", k, calls[k], v)
		}
	}
	for _, name := range []string{"@second-inc/cut-cli", st.Ledger.Packages[0].Name} {
		info, _ := reg.Package(context.Background(), name)
		if info == nil || info.DistTags["latest"] != version {
			t.Errorf("%s: latest is not %s: %+v", name, version, info)
		}
	}
	if st.Ledger.Counts()[publish.StateSkipped] != 3 {
		t.Errorf("tags run: %+v", st.Ledger.Counts())
	}

	// The next version: packages go in, latest stays on 1.4.0 until tags.
	dist2 := t.TempDir()
	o.Dist, o.Version = dist2, "1.5.0"
	o.Build = testsupport.FakeRelease(t, dist2, "cut", "1.5.0", "1.5.0")
	o.Sign = func(context.Context) error { return errors.New("sign failed again") }
	if _, err := cut.Run(context.Background(), o); err == nil {
		t.Fatal("cut with a failing sign passed")
	}
	for _, name := range []string{"@second-inc/cut-cli", st.Ledger.Packages[0].Name} {
		info, _ := reg.Package(context.Background(), name)
		if info == nil || info.Versions["1.5.0"] == "" || info.DistTags["latest"] != version {
			t.Errorf("%s: want 1.5.0 published and latest still %s: %+v", name, version, info)
		}
	}
}

func loadConf(rc string) (*npmconf.Config, error) {
	return npmconf.Load(npmconf.Options{Env: []string{"npm_config_userconfig=" + rc}})
}
