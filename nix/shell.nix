# Everything a release engineer needs: go, node 20, redis, goreleaser, cosign, skopeo.
{ pkgs }:
pkgs.mkShell {
  packages = with pkgs; [ go nodejs_20 redis goreleaser cosign skopeo git actionlint ];
  shellHook = ''
    export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
  '';
}
