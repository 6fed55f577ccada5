# Base images for web and worker built with dockerTools: the reproducible
# alternative to pulled bases. Load with `docker load < result` or push with
# skopeo, then pin the digest in release.yaml (images.web.base / images.worker.base).
{ pkgs }:
let
  user = [
    (pkgs.writeTextDir "etc/passwd" "root:x:0:0::/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n")
    (pkgs.writeTextDir "etc/group" "root:x:0:\nnode:x:1000:\n")
  ];
in
{
  web-base = pkgs.dockerTools.buildLayeredImage {
    name = "second-web-base";
    tag = "nix";
    contents = [ pkgs.nodejs_20 pkgs.cacert ] ++ user;
    config = {
      User = "1000:1000";
      Env = [ "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt" ];
    };
  };

  # The worker runs agents that use git, ripgrep and a shell.
  worker-base = pkgs.dockerTools.buildLayeredImage {
    name = "second-worker-base";
    tag = "nix";
    contents = [ pkgs.nodejs_20 pkgs.cacert pkgs.git pkgs.ripgrep pkgs.bashInteractive pkgs.coreutils ] ++ user;
    config = {
      User = "1000:1000";
      Env = [ "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt" ];
    };
  };
}
