#!/usr/bin/env bash
# Time from `podman run` to healthy for the host-platform web and worker
# images (dev base: the host's node), pulled with podman (runc) from a real
# distribution registry on loopback. Needs podman + runc and .tools/bin/registry
# (scripts/setup). Reports s-web-run-to-healthy/op, s-worker-run-to-healthy/op
# and s-pull-both/op.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench RunToHealthy -benchtime "${BENCHTIME:-3x}" ./internal/release/imagerun/
