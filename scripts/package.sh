#!/usr/bin/env bash
# Builds the proxyha .deb with cargo-deb ([package.metadata.deb] in
# Cargo.toml): the binary, the systemd unit proxyha@.service, the man pages
# and shell completions generated from the CLI, the example configs of
# pipelines/cluster-a, the docs and the Wireshark dissector.
#
#   scripts/package.sh                    # release build, .deb into target/debian/
#   scripts/package.sh --out DIR          # .deb into DIR
#   scripts/package.sh --prebuilt BIN     # package an already-built binary (tests)
#
# Installs cargo-deb (cargo install --locked) when it is missing. Prints the
# path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packaging.sh

out=""
prebuilt=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --prebuilt) prebuilt=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | cut -c3-; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! cargo deb --version >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb" >&2
  # Its own temporary target dir, not the project's.
  env -u CARGO_TARGET_DIR cargo install cargo-deb --locked --quiet
fi

target=$(target_dir)
if [ -n "$prebuilt" ]; then
  # cargo-deb refuses the dev profile; a profile of our own (inherits
  # release, never built) holds the binary we were given.
  profile=prebuilt
  mkdir -p "$target/$profile"
  cp "$prebuilt" "$target/$profile/proxyha"
  flags=(--strip --fast)
else
  profile=release
  cargo build --release --locked --bin proxyha
  flags=()
fi
gen_assets "$target/$profile/proxyha" "$target/$profile/packaging"

out=${out:-$target/debian}
mkdir -p "$out"
cargo deb --no-build --profile "$profile" --output "$out" "${flags[@]}" >&2
deb=$(ls -t "$out"/proxyha_*.deb | head -n 1)
echo "$deb"
