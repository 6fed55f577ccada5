# NAR hash of `go mod vendor` output for buildGoModule. scripts/ci-checks
# recomputes it (`nix hash path` of a fresh `go mod vendor`) and fails when stale.
"sha256-JKEHVIP8yBWKkvxt/SSCamg66LSuh7TUVpkJe7+d2Ow="
