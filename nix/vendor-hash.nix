# NAR hash of `go mod vendor` output for buildGoModule. scripts/ci-checks
# recomputes it (`nix hash path` of a fresh `go mod vendor`) and fails when stale.
"sha256-LLSTayEt8w/LZmwNTRlKz0UdeEKqTYwGhHm7ow3oVZ8="
