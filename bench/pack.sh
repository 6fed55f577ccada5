#!/usr/bin/env bash
# Payload benchmark: assemble and pack a payload from already built inputs,
# against `tar czf` of the same tree, interleaved in one run.
# Usage: bench/pack.sh [WEB_DIR]
#   WEB_DIR: a built Next.js .next/standalone tree (copy it first if a build
#   may be rewriting it); default: a generated tree of similar shape.
#   BENCHTIME (default 5x) is passed to go test -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  SECOND_BENCH_WEB_DIR="$(cd "$1" && pwd)"
  export SECOND_BENCH_WEB_DIR
fi
out="$(go test -run '^$' -bench 'AssemblePackVsTarCzf' -benchtime "${BENCHTIME:-5x}" ./internal/release/payload)"
printf '%s\n' "$out"
printf '%s\n' "$out" | awk '
  /^BenchmarkAssemblePackVsTarCzf/ {
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    printf "\nassemble+pack %d ms, tar czf %d ms: ratio %.2f (goal <= 1.25: %s)\n",
      m["ours-ms/op"], m["tarczf-ms/op"], m["ratio"], (m["ratio"] <= 1.25 ? "met" : "NOT met")
    printf "payload tarball %.1f MB (tar czf: %.1f MB)\n", m["tgz-bytes"] / 1e6, m["tarczf-bytes"] / 1e6
  }'
