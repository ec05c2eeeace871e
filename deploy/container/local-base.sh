#!/usr/bin/env bash
# Builds a local stand-in for docker.io/library/node:20-bookworm-slim from Debian packages only,
# for machines that reach Debian's mirror and npm but no container registry:
#
#   deploy/container/local-base.sh [IMAGE]      # default localhost/bastion-base/node:20-bookworm
#
# A minimal Debian bookworm (mmdebstrap --variant=minbase, from the mirror this machine's apt
# uses), imported with podman, plus this machine's own node binary and npm in /usr/local, where
# the official node images have them, and the CA bundle this machine's node trusts. Nothing is rebuilt when IMAGE exists (LOCAL_BASE_REBUILD=1
# forces it). Needs root, podman and mmdebstrap (apt-get install -y podman mmdebstrap).
set -euo pipefail
umask 022
image="${1:-localhost/bastion-base/node:20-bookworm}"
debian_image="${image%%:*}-debian:bookworm"

if [ "${LOCAL_BASE_REBUILD:-0}" != 1 ] && podman image exists "$image"; then
  echo "local-base: $image exists" >&2
  exit 0
fi

# The mirror apt uses here (deb822 sources first, then the classic list), else Debian's CDN.
mirror=""
for file in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  [ -f "$file" ] || continue
  mirror="$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit } /^deb / && $3 == "bookworm" { print $2; exit }' "$file")"
  [ -n "$mirror" ] && break
done
mirror="${mirror:-http://deb.debian.org/debian}"

node_bin="$(readlink -f "$(command -v node)")"
npm_dir="$(npm root -g)/npm"
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "local-base: npm not found at $npm_dir" >&2; exit 1; }
"$node_bin" -e 'if (Number(process.versions.node.split(".")[0]) < 20) { console.error(`local-base: node ${process.version} is older than 20`); process.exit(1); }'

work="$(mktemp -d /var/tmp/bastion-local-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT

started=$SECONDS
if [ "${LOCAL_BASE_REBUILD:-0}" = 1 ] || ! podman image exists "$debian_image"; then
  echo "local-base: mmdebstrap bookworm minbase from $mirror" >&2
  mmdebstrap --quiet --variant=minbase --mode=root bookworm "$work/rootfs.tar" "$mirror"
  podman import --quiet --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$debian_image" >/dev/null
  echo "local-base: $debian_image in $((SECONDS - started)) s" >&2
fi

mkdir -p "$work/context"
cp "$node_bin" "$work/context/node"
cp -a "$npm_dir" "$work/context/npm"
# The CA bundle node trusts here (a TLS-intercepting egress proxy's CA, if any), so npm ci in the
# build stage reaches the registry as it does on this machine.
ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca" ]; then cp "$ca" "$work/context/host-ca.crt"; else : >"$work/context/host-ca.crt"; fi
cat >"$work/context/Containerfile" <<CONTAINERFILE
FROM $debian_image
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY host-ca.crt /usr/local/share/bastion-base/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/bastion-base/host-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
CMD ["node"]
CONTAINERFILE
podman build --quiet -t "$image" "$work/context" >/dev/null
echo "local-base: $image (node $("$node_bin" --version)) in $((SECONDS - started)) s" >&2
