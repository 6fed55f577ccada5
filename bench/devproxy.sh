#!/usr/bin/env bash
# The second dev proxy's added latency per request: the same 4 KiB GET from a
# loopback server directly and through devproxy (keep-alive both ways).
# Goal: proxied - direct <= 1 ms. BENCHTIME (default 3000x), COUNT (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(go test -run '^$' -bench 'Direct|Proxied' -benchtime "${BENCHTIME:-3000x}" -count "${COUNT:-5}" ./internal/local/devproxy)"
printf '%s\n' "$out"
printf '%s\n' "$out" | awk '
  /^BenchmarkDirect/  { d += $3; nd++ }
  /^BenchmarkProxied/ { p += $3; np++ }
  END {
    added = (p / np - d / nd) / 1e6
    printf "\ndirect %.3f ms, proxied %.3f ms: the proxy adds %.3f ms per request (goal <= 1 ms: %s)\n",
      d / nd / 1e6, p / np / 1e6, added, (added <= 1 ? "met" : "NOT met")
  }'
