// Command vendorhash checks (default), prints (-print) or rewrites (-fix)
// the vendorHash in nix/vendor-hash.nix, and checks that every .nix file parses.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/second-inc/second-release/internal/devtools/nixcheck"
)

func main() {
	print := flag.Bool("print", false, "print the right vendorHash")
	fix := flag.Bool("fix", false, "write the right vendorHash into "+nixcheck.VendorHashFile)
	flag.Parse()
	ctx := context.Background()
	if err := run(ctx, *print, *fix); err != nil {
		fmt.Fprintln(os.Stderr, "vendorhash:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, print, fix bool) error {
	if print || fix {
		h, err := nixcheck.ComputeVendorHash(ctx, ".")
		if err != nil {
			return err
		}
		fmt.Println(h)
		if fix {
			return nixcheck.WriteVendorHash(nixcheck.VendorHashFile, h)
		}
		return nil
	}
	if err := nixcheck.ParseAll(ctx, "."); err != nil {
		return err
	}
	if err := nixcheck.CheckVendorHash(ctx, ".", nixcheck.VendorHashFile); err != nil {
		return err
	}
	fmt.Println("nix files parse; vendorHash is current")
	return nil
}
