#!/usr/bin/env bash
# Runtime benchmarks: start-to-ready of `second` against the same
# children started directly (supervisor overhead, goal <= 50 ms) and the
# supervisor's RSS and CPU at steady state with liveness probes running (goals
# <= 20 MB and <= 0.5 % of one core).
#
# Needs redis-server and node on PATH and a mongod: mongod on PATH or
# SECOND_TEST_MONGOD=/path/to/mongod (for a quick local run, the wire-protocol
# stand-in: cd ../shared/tools/fakemongod && go build -o /tmp/fakemongod/mongod .).
# Usage: bench/runtime.sh [iterations]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
if [ -z "${SECOND_TEST_MONGOD:-}" ] && ! command -v mongod >/dev/null; then
  echo "bench/runtime.sh: needs mongod on PATH or SECOND_TEST_MONGOD" >&2
  exit 2
fi
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
go test -run '^$' -bench 'StartToReady|SteadyStateRSS' -benchtime "${n}x" ./cmd/second |
  awk '/^Benchmark/ {print} /^(ok|FAIL)/ {print}'
echo "# overhead-ms = second-ms - direct-ms (mean per start); rss-MB = max VmRSS of the supervisor;"
echo "# cpu-% = its user+system CPU over the idle window, in % of one core"
