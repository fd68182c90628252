#!/usr/bin/env bash
# Builds the streamkv container image (deploy/Dockerfile) without a container registry.
#
#   deploy/build-image.sh [--base IMAGE] [--tag TAG]
#
# --base IMAGE   base image to build on, e.g. node:20-slim from a registry. Default:
#                streamkv-base:local, made here by `docker import` of a small rootfs:
#                the host's own node binary, the shared libraries ldd lists for it,
#                and /etc/passwd with the unprivileged user 10001 (no shell, no npm).
# --tag TAG      image tag (default streamkv:local).
#
# The build context is staged in a temporary folder: the product sources, the esbuild
# bundle of the CLI (dist/, so a container starts in plain Node, no tsx compile), and
# production node_modules from `npm ci --omit=dev` (npm's cache makes repeats offline).
# Needs docker (a running engine), node and npm on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

base=""
tag="streamkv:local"
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "usage: deploy/build-image.sh [--base IMAGE] [--tag TAG]" >&2; exit 2 ;;
  esac
done

docker info >/dev/null 2>&1 || {
  echo "build-image: no Docker engine answers (docker info failed); start dockerd first" >&2
  exit 1
}

stage="$(mktemp -d "${TMPDIR:-/tmp}/streamkv-image.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

if [ -z "$base" ]; then
  base="streamkv-base:local"
  node_bin="$(readlink -f "$(command -v node)")"
  rootfs="$stage/rootfs"
  mkdir -p "$rootfs/usr/bin" "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cp "$node_bin" "$rootfs/usr/bin/node"
  # The dynamic loader and every library node links against, at the same paths.
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nstreamkv:x:10001:10001:streamkv:/data:/sbin/nologin\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nstreamkv:x:10001:\n' >"$rootfs/etc/group"
  # LevelDB and Node resolve nothing by name, but the client tests may use node names.
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL org.streamkv.node-version=$("$node_bin" --version)" \
    - "$base" >/dev/null
  echo "build-image: base $base from $node_bin ($("$node_bin" --version)), $(du -sh "$rootfs" | cut -f1)"
  rm -rf "$rootfs"
fi

# The CLI bundle, fresh from the sources (bin/streamkv.js uses it only while no
# bundled source is newer than it, so the copies below keep their mtimes).
npm run --silent build:cli
app="$stage/ctx/app"
mkdir -p "$app" "$stage/ctx/data"
git ls-files -z bin cli client node nats kvapi log raft raftstore proto package.json package-lock.json |
  grep -zv '\.test\.ts$' |
  xargs -0 cp -p --parents -t "$app"
cp -rp dist "$app/dist"
# --ignore-scripts: `prepare` would build the CLI again (esbuild is a dev dependency);
# classic-level loads its prebuilt binding at run time without an install script.
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)

# The legacy builder: this file has no RUN step, and Debian's engine may have no buildx.
DOCKER_BUILDKIT=0 docker build -q -f deploy/Dockerfile --build-arg "BASE=$base" -t "$tag" "$stage/ctx" >/dev/null
echo "build-image: $tag on $base, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
