# The version the flake stamps into both binaries (release builds pass theirs through GoReleaser).
"0.0.0-nix"
