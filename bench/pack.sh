#!/usr/bin/env bash
# Payload benchmark: what a release engineer waits for per platform, on a
# tree of the real product's shape. Times assembling the payload dir (copying
# the built trees, and hard-linking them as `release build` does), packing it,
# both together (the whole payload), and `tar czf` of the same dir.
# Usage: bench/pack.sh [WEB_DIR [WORKER_DIR]]
#   WEB_DIR: a built Next.js .next/standalone tree; WORKER_DIR: a built
#   worker dir (copy them first if a build may be rewriting them). Default:
#   generated trees of the same shape (a Next standalone of ~3,600 entries, a
#   worker with a ~200 MB native binary).
#   BENCHTIME (default 3x) is passed to go test -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  SECOND_BENCH_WEB_DIR="$(cd "$1" && pwd)"
  export SECOND_BENCH_WEB_DIR
fi
if [ $# -gt 1 ]; then
  SECOND_BENCH_WORKER_DIR="$(cd "$2" && pwd)"
  export SECOND_BENCH_WORKER_DIR
fi
out="$(go test -run '^$' -bench '^BenchmarkPayload$' -benchtime "${BENCHTIME:-3x}" -timeout 60m ./internal/release/payload)"
printf '%s\n' "$out"
printf '%s\n' "$out" | awk '
  /^BenchmarkPayload\// {
    name = $1; sub(/^BenchmarkPayload\//, "", name); sub(/-[0-9]+$/, "", name)
    for (i = 3; i < NF; i++) m[name, $(i + 1)] = $i
  }
  END {
    printf "\nper payload (ms):\n"
    printf "  assemble, copying the trees   %8.0f\n", m["assemble_copy", "ns/op"] / 1e6
    printf "  assemble, hard-linking them   %8.0f\n", m["assemble_link", "ns/op"] / 1e6
    printf "  pack alone                    %8.0f\n", m["pack", "ns/op"] / 1e6
    printf "  whole (assemble link + pack)  %8.0f\n", m["whole", "ns/op"] / 1e6
    printf "  tar czf of the same dir       %8.0f\n", m["tar_czf", "ns/op"] / 1e6
    printf "whole / tar czf: %.2f\n", m["whole", "ns/op"] / m["tar_czf", "ns/op"]
    printf "payload tree %.1f MB, tarball %.1f MB (tar czf %.1f MB)\n",
      m["pack", "tree-bytes"] / 1e6, m["pack", "tgz-bytes"] / 1e6, m["tar_czf", "tgz-bytes"] / 1e6
  }'
