{
  description = "Second: the release tool and the local runtime, built reproducibly";

  # Pinned by flake.lock once created (`nix flake lock`); unstable carries Go 1.26.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = import ./nix/version.nix;
      commit = self.rev or self.dirtyRev or "dirty";
    in
    {
      packages = forAll (pkgs:
        let
          go = import ./nix/go.nix { inherit pkgs version commit; src = ./.; };
        in
        {
          second = go.second;
          release = go.release;
          default = go.release;
        } // pkgs.lib.optionalAttrs pkgs.stdenv.isLinux (import ./nix/images.nix { inherit pkgs; }));

      apps = forAll (pkgs: {
        second = { type = "app"; program = "${self.packages.${pkgs.system}.second}/bin/second"; };
        release = { type = "app"; program = "${self.packages.${pkgs.system}.release}/bin/release"; };
        default = self.apps.${pkgs.system}.release;
      });

      devShells = forAll (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });

      # The Go unit tests: buildGoModule runs `go test` in its check phase.
      checks = forAll (pkgs: {
        go-tests = (import ./nix/go.nix { inherit pkgs version commit; src = ./.; }).tests;
      });
    };
}
