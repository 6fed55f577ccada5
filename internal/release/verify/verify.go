// Package verify checks, before anyone runs an image, that each reference is
// pinned by digest and carries a valid cosign signature from a given public
// key (the legacy .sig scheme `cosign verify --key` reads; no transparency
// log). An index is only trusted when it and every platform manifest in it
// verify.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v3/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v3/pkg/oci/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/second-inc/second-release/internal/release/oci"
)

// Status of one checked reference.
type Status string

const (
	OK           Status = "ok"
	TagOnly      Status = "tag-only"      // not pinned by digest
	Unsigned     Status = "unsigned"      // no signature at all
	BadSignature Status = "bad-signature" // signatures exist, none valid for this key and digest
	Unreachable  Status = "error"         // could not resolve or read
)

// Row is one line of the verification table.
type Row struct {
	Ref      string `json:"ref"`    // as given (or the child manifest's repo@digest)
	Digest   string `json:"digest"` // resolved digest, "" when unknown
	Kind     string `json:"kind"`   // index | manifest
	Platform string `json:"platform,omitempty"`
	Service  string `json:"service,omitempty"` // compose service, when from --compose
	Status   Status `json:"status"`
	Detail   string `json:"detail,omitempty"`
}

// Target is one reference to check, optionally named by its compose service.
type Target struct {
	Ref     string
	Service string
}

// Options configures Verify.
type Options struct {
	Verifier  signature.Verifier
	Targets   []Target
	Transport http.RoundTripper
}

// Failed is returned when any row is not ok; it names each failing reference.
type Failed struct{ Rows []Row }

func (f *Failed) Error() string {
	var parts []string
	for _, r := range f.Rows {
		parts = append(parts, fmt.Sprintf("%s (%s)", r.Ref, r.Status))
	}
	return fmt.Sprintf("%d image reference(s) failed verification: %s", len(f.Rows), strings.Join(parts, ", "))
}

// Verify checks every target and returns the table; err is *Failed when any
// row is not ok.
func Verify(ctx context.Context, opts Options) ([]Row, error) {
	if opts.Verifier == nil {
		return nil, errors.New("verify: no public key loaded")
	}
	if len(opts.Targets) == 0 {
		return nil, errors.New("verify: no image references given: pass REF... or --compose FILE")
	}
	ropts := oci.RemoteOptions(ctx, opts.Transport)
	co := &cosign.CheckOpts{
		SigVerifier:        opts.Verifier,
		IgnoreTlog:         true, // key mode: the key is the trust root, nothing public to consult
		ClaimVerifier:      cosign.SimpleClaimVerifier,
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(ropts...)},
	}
	var rows []Row
	for _, t := range opts.Targets {
		rows = append(rows, checkTarget(ctx, t, co, ropts)...)
	}
	var bad []Row
	for _, r := range rows {
		if r.Status != OK {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		return rows, &Failed{Rows: bad}
	}
	return rows, nil
}

func checkTarget(ctx context.Context, t Target, co *cosign.CheckOpts, ropts []remote.Option) []Row {
	row := Row{Ref: t.Ref, Service: t.Service, Kind: "manifest"}
	ref, err := name.ParseReference(t.Ref)
	if err != nil {
		row.Status, row.Detail = Unreachable, "not an image reference: "+err.Error()
		return []Row{row}
	}
	// Fetching by digest also checks the manifest bytes hash to that digest.
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		row.Status, row.Detail = Unreachable, "resolve: "+err.Error()
		if _, isDigest := ref.(name.Digest); !isDigest {
			row.Status, row.Detail = TagOnly, "not pinned by digest (and "+row.Detail+")"
		}
		return []Row{row}
	}
	row.Digest = desc.Digest.String()
	if desc.MediaType.IsIndex() {
		row.Kind = "index"
	}
	if _, isDigest := ref.(name.Digest); !isDigest {
		row.Status = TagOnly
		row.Detail = "pin it as " + ref.Context().Digest(row.Digest).String()
		return []Row{row}
	}
	var children []Row
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			im, err2 := idx.IndexManifest()
			if err2 != nil {
				err = err2
			} else {
				for _, m := range im.Manifests {
					c := Row{Ref: ref.Context().Digest(m.Digest.String()).String(), Digest: m.Digest.String(), Kind: "manifest", Service: t.Service}
					if m.Platform != nil {
						c.Platform = m.Platform.OS + "/" + m.Platform.Architecture
					}
					c.Status, c.Detail = checkSig(ctx, c.Ref, co)
					children = append(children, c)
				}
			}
		}
		if err != nil {
			row.Status, row.Detail = Unreachable, "read index: "+err.Error()
			return []Row{row}
		}
	}
	row.Status, row.Detail = checkSig(ctx, ref.String(), co)
	return append([]Row{row}, children...)
}

func checkSig(ctx context.Context, ref string, co *cosign.CheckOpts) (Status, string) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return Unreachable, err.Error()
	}
	sigs, _, err := cosign.VerifyImageSignatures(ctx, d, co)
	if err == nil && len(sigs) > 0 {
		return OK, fmt.Sprintf("%d valid signature(s)", len(sigs))
	}
	var noSigs *cosign.ErrNoSignaturesFound
	var noMatch *cosign.ErrNoMatchingSignatures
	switch {
	case errors.As(err, &noSigs):
		return Unsigned, "no signature found"
	case errors.As(err, &noMatch):
		return BadSignature, "no signature valid for this key and digest"
	case err == nil:
		return Unsigned, "no signature found"
	default:
		return Unreachable, err.Error()
	}
}

// WriteTable prints rows as an aligned table.
func WriteTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSERVICE\tKIND\tPLATFORM\tREFERENCE\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Status, dash(r.Service), r.Kind, dash(r.Platform), r.Ref, r.Detail)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
