package publish_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/second-inc/second-release/internal/release/publish"
	"github.com/second-inc/second-release/internal/testsupport/faultproxy"
)

type report struct{ done, total int64 }

// TestUploadProgress publishes a release whose payloads carry 3 MiB each
// through a proxy that takes the linux-x64 upload at 1 MiB/s: that upload
// is reported from 0 through several steps to its whole size (the tarball
// base64-encoded, as npm sends it), in order, while it is under way.
func TestUploadProgress(t *testing.T) {
	if err := socketDiag(); err != nil {
		t.Skipf("needs the kernel's TCP socket diagnostics (Linux's NETLINK_INET_DIAG, as `ss -ti` uses; elsewhere only an upload's start and end are reported): %v", err)
	}
	srv, token := registry(t)
	proxy, err := faultproxy.Start(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	env := npmEnv(t, proxy.URL, token)
	dist := releaseWithBulk(t, "progress", "1.0.0", "progress", 3<<20)
	slow := payloadName("progress", "linux-x64")
	proxy.Add(faultproxy.Rule{Method: "PUT", Suffix: "/" + slow, Action: faultproxy.Throttle, Rate: 1 << 20})

	var mu sync.Mutex
	seen := map[string][]report{}
	opts := options(t, dist, proxy.URL, env)
	opts.Progress = func(item string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		seen[item] = append(seen[item], report{done, total})
	}
	if _, err := publish.Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()

	tarball := filepath.Join(dist, "npm", strings.NewReplacer("@", "", "/", "-").Replace(slow)+"-1.0.0.tgz")
	st, err := os.Stat(tarball)
	if err != nil {
		t.Fatal(err)
	}
	want := (st.Size() + 2) / 3 * 4
	got := seen[filepath.Base(tarball)]
	if len(got) < 3 {
		t.Fatalf("%s: reports %v, want a start, steps and an end (all: %v)", filepath.Base(tarball), got, seen)
	}
	if got[0] != (report{0, want}) || got[len(got)-1] != (report{want, want}) {
		t.Errorf("first report %v, last %v; want {0 %d} and {%d %d}", got[0], got[len(got)-1], want, want, want)
	}
	t.Logf("%s: %v", filepath.Base(tarball), got)
	steps := map[int64]bool{}
	for i, r := range got[1 : len(got)-1] {
		if r.total != want || r.done < got[i].done || r.done >= want {
			t.Fatalf("report %d is %v after %v: want totals %d, done growing and below the total until the end", i+1, r, got[i], want)
		}
		if r.done > 0 {
			steps[r.done*10/want] = true
		}
	}
	// At 1 MiB/s the ~4 MiB upload takes seconds: polled every 100 ms, it
	// shows up in several different tenths on its way.
	if len(steps) < 3 {
		t.Errorf("upload seen in tenths %v only, want several: %v", steps, got)
	}
	for _, p := range []string{"darwin-arm64"} {
		item := strings.NewReplacer("@", "", "/", "-").Replace(payloadName("progress", p)) + "-1.0.0.tgz"
		if r := seen[item]; len(r) < 2 || r[len(r)-1].done != r[len(r)-1].total {
			t.Errorf("%s: reports %v, want a start and an end", item, r)
		}
	}
}
