// Command signedpull pulls an image the way podman, CRI-O and skopeo do on
// operators' machines: through the containers/image library, enforcing a
// policy.json (sigstoreSigned with keyPath) and registries.d
// (use-sigstore-attachments). Tests use it to prove that the policy
// `release verify --print-policy` writes accepts our signed images and
// refuses unsigned and wrongly signed ones, where Debian's podman has
// sigstore verification compiled out.
//
// It is its own module so that the repository's default build needs neither
// containers/image nor its build tags; scripts/setup builds it with
// -tags containers_image_openpgp,exclude_graphdriver_btrfs.
//
//	signedpull --policy policy.json --registries-d DIR [--insecure] REF
//
// Exit 0: accepted (the image was copied to a scratch directory); 1: refused
// or failed, with the reason on stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

func main() {
	policyPath := flag.String("policy", "", "policy.json to enforce")
	registriesD := flag.String("registries-d", "", "registries.d directory (use-sigstore-attachments)")
	insecure := flag.Bool("insecure", false, "plain HTTP / no TLS verification (a loopback registry)")
	flag.Parse()
	if *policyPath == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: signedpull --policy policy.json [--registries-d DIR] [--insecure] REF")
		os.Exit(2)
	}
	if err := pull(*policyPath, *registriesD, *insecure, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "refused:", err)
		os.Exit(1)
	}
	fmt.Println("accepted", flag.Arg(0))
}

func pull(policyPath, registriesD string, insecure bool, ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sys := &types.SystemContext{SignaturePolicyPath: policyPath, RegistriesDirPath: registriesD}
	if insecure {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	policy, err := signature.NewPolicyFromFile(policyPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", policyPath, err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return err
	}
	defer pc.Destroy() //nolint:errcheck
	src, err := alltransports.ParseImageName("docker://" + ref)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "signedpull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dst, err := alltransports.ParseImageName("dir:" + dir)
	if err != nil {
		return err
	}
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys})
	return err
}
