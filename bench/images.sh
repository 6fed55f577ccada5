#!/usr/bin/env bash
# Image build+push benchmark against a real distribution registry
# (.tools/bin/registry from scripts/setup). Reports, per run of
# `release images --push` on two images x two platforms (~35 MB of app files):
#   s-build+push/op     build (layers, gzip, OCI layout) + push to a fresh repo
#   s-write+hash/op     writing and sha256-hashing the same bytes (the floor)
#   ratio               the two divided
#   blob-bytes-2nd-push/op  bytes of layers/configs a second push of the unchanged
#                       images uploads (goal 0: ggcr HEADs each blob first)
#   blob-bytes-app-only-release/op  bytes the next version uploads when only
#                       server.js changed (node_modules sits in its own layer)
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench BuildPush -benchtime "${BENCHTIME:-3x}" ./internal/release/oci/
