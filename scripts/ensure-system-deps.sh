#!/usr/bin/env bash
# Makes sure the Debian packages Bastion needs are present: `run` for the gateway (the sandbox),
# `test` (default) for the whole test suite. As root with apt-get it installs what is missing;
# otherwise it names the command to run.
set -euo pipefail
purpose="${1:-test}"
declare -A need
if [ "$purpose" = run ]; then
  need=([bwrap]=bubblewrap [prlimit]=util-linux [setpriv]=util-linux [dumb-init]=dumb-init)
else need=(
  [bwrap]=bubblewrap
  [redis-server]=redis-server
  [scmp_sys_resolver]=seccomp
  [yara]=yara
  [strace]=strace
  [prlimit]=util-linux
  [setpriv]=util-linux
  [runc]=runc
  [nft]=nftables
  [ip]=iproute2
  [runsc]=runsc
  [dumb-init]=dumb-init
  [haproxy]=haproxy
  [prometheus]=prometheus
  [rsyslogd]=rsyslog
  [chromium]=chromium
)
fi
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system-deps: installing ${pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${pkgs[@]}" >/dev/null
else
  echo "ensure-system-deps: missing Debian packages: ${pkgs[*]}" >&2
  echo "  install them with: sudo apt-get install -y ${pkgs[*]}" >&2
  exit 1
fi
