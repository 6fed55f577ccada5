package testsupport

import (
	"context"
	"testing"
	"time"

	"github.com/second-inc/second-release/internal/release/verdaccio"
)

// VerdaccioUser is the publisher Verdaccio creates; its token is returned.
const VerdaccioUser = "test-publisher"

// Verdaccio starts a private Verdaccio (the scope readable and publishable
// only when authenticated) for one test, stopped at cleanup, and returns it
// with a publisher's token.
func Verdaccio(t testing.TB, scope string) (*verdaccio.Server, string) {
	t.Helper()
	bin := Tool(t, "verdaccio")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := verdaccio.Start(ctx, verdaccio.Options{Dir: t.TempDir(), Bin: bin, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	token, err := srv.AddUser(ctx, VerdaccioUser, "test-publisher-password")
	if err != nil {
		t.Fatal(err)
	}
	return srv, token
}
