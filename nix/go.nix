# Both Go binaries with the same flags GoReleaser uses: -trimpath, CGO off,
# -s -w -buildid=, version and commit through -X.
{ pkgs, src, version, commit }:
let
  pkgPath = "github.com/second-inc/second-release";
  common = {
    inherit version src;
    vendorHash = import ./vendor-hash.nix;
    env.CGO_ENABLED = 0;
    flags = [ "-trimpath" ];
    ldflags = [
      "-s" "-w" "-buildid="
      "-X ${pkgPath}/internal/buildinfo.Version=${version}"
      "-X ${pkgPath}/internal/buildinfo.Commit=${commit}"
    ];
  };
  build = name: pkgs.buildGoModule (common // {
    pname = name;
    subPackages = [ "cmd/${name}" ];
    doCheck = false;
    meta.mainProgram = name;
  });
in
{
  second = build "second";
  release = build "release";
  # Unit tests only: the end-to-end tests need registries, node and redis at run time.
  tests = pkgs.buildGoModule (common // {
    pname = "second-release-tests";
    doCheck = true;
    checkFlags = [ "-short" ];
    subPackages = [ "internal/..." "cmd/..." ];
  });
}
