package publish

import (
	"context"

	"github.com/second-inc/second-release/internal/npmregistry"
)

// Registry reads what an npm registry holds. *npmregistry.Client is the real
// one; unit tests use an in-memory one.
type Registry interface {
	// Ping fails when the registry cannot be reached.
	Ping(ctx context.Context) error
	// Whoami is the authenticated user's name; "" when the registry sees an
	// anonymous client. A refusal has npmregistry code auth_required or forbidden.
	Whoami(ctx context.Context) (string, error)
	// Package returns the package's versions and dist-tags; nil, nil when the
	// registry does not know the package.
	Package(ctx context.Context, name string) (*npmregistry.PackageInfo, error)
}

var _ Registry = (*npmregistry.Client)(nil)

// refused reports whether err is the registry rejecting our credentials.
func refused(err error) bool {
	c := npmregistry.CodeOf(err)
	return c == npmregistry.CodeAuthRequired || c == npmregistry.CodeForbidden
}
