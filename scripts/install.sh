#!/usr/bin/env bash
# Installs proxyha from source: a release build, then the binary, the
# systemd unit, the man pages and shell completions (generated from the
# CLI), the example configs and the Wireshark dissector.
#
#   sudo scripts/install.sh                         # into /usr/local
#   PREFIX=/usr scripts/install.sh                  # into /usr
#   DESTDIR=/tmp/stage scripts/install.sh           # staged (packagers, tests)
#   scripts/install.sh --prebuilt BIN               # install BIN, no build
#
# Variables: PREFIX (/usr/local), DESTDIR (empty), SYSCONFDIR (/etc),
# UNITDIR ($PREFIX/lib/systemd/system, which systemd searches for /usr and
# /usr/local). The unit is rewritten to run $PREFIX/bin/proxyha on
# $SYSCONFDIR/proxyha/NAME.toml. Then: systemctl daemon-reload;
# systemctl enable --now proxyha@NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/packaging.sh

prebuilt=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt) prebuilt=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | cut -c3-; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
case "$PREFIX$SYSCONFDIR$UNITDIR" in
  *'#'*) echo "install.sh: '#' in a path is not supported" >&2; exit 2 ;;
esac

if [ -n "$prebuilt" ]; then
  bin=$prebuilt
else
  cargo build --release --locked --bin proxyha
  bin="$(target_dir)/release/proxyha"
fi
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
gen_assets "$bin" "$gen"

root="$DESTDIR"
share="$root$PREFIX/share"
install -D -m 0755 "$bin" "$root$PREFIX/bin/proxyha"
install -d -m 0755 "$root$UNITDIR"
sed -e "s#/usr/bin/proxyha#$PREFIX/bin/proxyha#g" \
    -e "s#/etc/proxyha/#$SYSCONFDIR/proxyha/#g" \
    packaging/systemd/proxyha@.service > "$root$UNITDIR/proxyha@.service"
chmod 0644 "$root$UNITDIR/proxyha@.service"
install -d -m 0755 "$share/man/man1"
install -m 0644 "$gen"/man/*.1.gz "$share/man/man1/"
install -D -m 0644 "$gen/completions/proxyha.bash" "$share/bash-completion/completions/proxyha"
install -D -m 0644 "$gen/completions/_proxyha" "$share/zsh/site-functions/_proxyha"
install -D -m 0644 "$gen/completions/proxyha.fish" "$share/fish/vendor_completions.d/proxyha.fish"
install -d -m 0755 "$share/doc/proxyha/examples/cluster-a"
install -m 0644 pipelines/cluster-a/*.toml "$share/doc/proxyha/examples/cluster-a/"
install -m 0644 pipelines/README.md "$share/doc/proxyha/examples/"
install -m 0644 README.md docs/*.md "$share/doc/proxyha/"
install -D -m 0644 packaging/wireshark/proxyha.lua "$share/proxyha/wireshark/proxyha.lua"
# Node configs and keys: never overwritten, the directory keeps its mode.
[ -d "$root$SYSCONFDIR/proxyha" ] || install -d -m 0750 "$root$SYSCONFDIR/proxyha"

echo "installed proxyha into ${DESTDIR:+$DESTDIR}$PREFIX (unit: $UNITDIR/proxyha@.service)"
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "next: put a node config in $SYSCONFDIR/proxyha/NAME.toml, then systemctl enable --now proxyha@NAME"
fi
