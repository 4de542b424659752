#!/usr/bin/env bash
# Installs the Debian packages that proxyha's build, tests, lab and demo need.
# Idempotent and quiet: it does nothing when everything is already present.
set -euo pipefail

PKGS=(
  # build: xsk-rs builds libbpf/libxdp from source; build.rs compiles the XDP program
  libelf-dev clang llvm m4 libpcap-dev zlib1g-dev pkg-config make gcc
  # lab and tests
  iproute2 tcpdump nftables curl squid procps psmisc iputils-ping python3 ethtool
  # perf lab: plot text (plotters + ab_glyph reads DejaVuSans.ttf), taskset/renice
  fonts-dejavu-core util-linux
  # packaging tests: systemd-analyze verify, groff/man for the man pages, dpkg
  # for the .deb, tshark for the Wireshark dissector (packaging/wireshark/)
  systemd groff-base man-db dpkg tshark
  # active-active lab: BGP, BFD and ECMP next to each director and on the router
  bird2
  # metrics: promtool checks the /metrics output (tests/e2e_notify.rs, node::metrics tests)
  prometheus
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep package daemons (squid) from starting in the root namespace on install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A squid (or prometheus) installed before policy-rc.d existed may be running in
# the root namespace.
for svc in squid prometheus; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done

# cargo-fuzz is optional (nightly only); fuzz targets also run as proptests.
exit 0
