#!/usr/bin/env bash
# Builds the coordinator and worker OCI images without a registry, from Debian packages:
#   1. a Debian bookworm rootfs (mmdebstrap, minbase plus ca-certificates);
#   2. the ladder binaries added to it (the worker also gets ladder-train's libtorch closure, as
#      resolved by ldd from the PyPI wheel that scripts/install-libtorch.sh installed);
#   3. committed as OCI images with buildah: localhost/ladder-coordinator:TAG and
#      localhost/ladder-worker:TAG;
#   4. checked: each entry point runs in its image, and libtorch is found (`ladder-train devices`).
# Installs mmdebstrap, buildah, podman and runc where missing (Debian, root).
# LADDER_BIN: the binaries (default target/release; CI passes target/debug), LADDER_IMAGE_TAG
# (default dev), LADDER_IMAGE_CACHE: where the rootfs tarball is kept (default ~/.cache/ladder).
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${LADDER_IMAGE_TAG:-dev}
cache=${LADDER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}
bin=${LADDER_BIN:-target/release}
say() { echo "images: $*"; }

need=()
for tool in mmdebstrap buildah podman runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "images: ${need[*]} missing and this is not a Debian root shell" >&2
    exit 1
  fi
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" uidmap >/dev/null
fi

if [ -z "${LADDER_BIN:-}" ]; then
  cargo build --release --bins -p ladder-coordinator -p ladder-worker -p ladder-trainer -p ladder-cli
fi
for b in ladder ladder-coordinator ladder-worker ladder-train; do
  [ -x "$bin/$b" ] || { echo "images: $bin/$b is missing" >&2; exit 1; }
done

mkdir -p "$cache"
rootfs=$cache/bookworm-minbase.tar
if [ ! -s "$rootfs" ]; then
  say "building the Debian bookworm rootfs (mmdebstrap)"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$rootfs.part" http://deb.debian.org/debian
  mv "$rootfs.part" "$rootfs"
fi

# Each build replaces the last: the working containers are named, so a failed run's are found and
# removed, and the image a tag pointed at before is removed once the tag moves (re-running CI on
# one machine used to pile up 3 GB untagged worker images until the disk was full).
leftovers() { buildah rm ladder-image-coordinator ladder-image-worker >/dev/null 2>&1 || true; }
leftovers

# The worker image holds libtorch's CUDA closure (about 2.7 GB): it is staged under /tmp, copied
# into buildah's working container, written as a blob under TMPDIR (/var/tmp) and committed into
# podman's graph root. Where those share a filesystem (the usual case) it needs them all at once:
# four copies, and a CI run once ran out of space at the commit with 8 GB free.
graphroot=$(podman info --format '{{.Store.GraphRoot}}')
mkdir -p "$graphroot"
# The libraries the worker image takes (what ldd resolves outside Debian's own), in KiB.
lib_kb=$(ldd "$bin/ladder-train" | awk '$3 ~ /^\// && $3 !~ /^\/(usr\/)?lib\// { print $3 }' | xargs -r du -ckL | awk 'END { print $1 + 0 }')
[ "$lib_kb" -gt 0 ] || { echo "images: ldd finds no libtorch for $bin/ladder-train" >&2; exit 1; }
declare -A need_on dirs_on
for dir in /tmp "${TMPDIR:-/var/tmp}" "$graphroot"; do
  dev=$(stat -c %d "$dir")
  need_on[$dev]=$(( ${need_on[$dev]:-0} + lib_kb + (lib_kb / 3) ))
  [ "$dir" = "$graphroot" ] && need_on[$dev]=$(( ${need_on[$dev]} + lib_kb ))
  dirs_on[$dev]="${dirs_on[$dev]:-}${dirs_on[$dev]:+, }$dir"
done
for dev in "${!need_on[@]}"; do
  dir=${dirs_on[$dev]%%,*}
  free_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  if [ "$free_kb" -lt "${need_on[$dev]}" ]; then
    echo "images: the filesystem of ${dirs_on[$dev]} has $((free_kb / 1024)) MiB free;" \
      "building the images needs $((need_on[$dev] / 1024)) MiB there (the worker's libraries are $((lib_kb / 1024)) MiB)" >&2
    exit 1
  fi
  say "$((free_kb / 1024)) MiB free for ${dirs_on[$dev]}; the build needs $((need_on[$dev] / 1024)) MiB"
done

stage=$(mktemp -d /tmp/ladder-image.XXXXXX)
trap 'rm -rf "$stage"; leftovers' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/state"

# The worker's shared libraries: everything ldd resolves outside the Debian rootfs.
ldd "$bin/ladder-train" | awk '$3 ~ /^\// { print $3 }' | while read -r lib; do
  case "$lib" in
  /lib/* | /usr/lib/*) ;; # Debian's own (libc, libstdc++, libgcc): in the rootfs already
  *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
# Debian's libstdc++ and libgomp are not in minbase; take the build host's (same bookworm).
for lib in libstdc++.so.6 libgomp.so.1; do
  # awk reads to the end: exiting at the first match would leave ldconfig writing into a closed
  # pipe, and under pipefail its SIGPIPE (141) ended CI once.
  p=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ && p == "" { p = $NF } END { print p }')
  [ -n "$p" ] && cp -L "$p" "$stage/lib/"
done

# One image: the rootfs, binaries in /usr/local/bin, a state folder owned by uid 10001, then
# buildah config arguments. LIBS=1 adds the library folder (the worker's libtorch closure).
image() { # name, binaries..., --, buildah config arguments...
  local name=$1
  shift
  local ctr before after
  ctr=$(buildah from --name "ladder-image-${name#ladder-}" scratch)
  buildah add --quiet "$ctr" "$rootfs" / >/dev/null
  while [ "$1" != -- ]; do
    buildah copy --quiet "$ctr" "$bin/$1" /usr/local/bin/ >/dev/null
    shift
  done
  shift
  [ "${LIBS:-0}" = 1 ] && buildah copy --quiet "$ctr" "$stage/lib" /opt/ladder/lib >/dev/null
  buildah copy --quiet --chown 10001:10001 "$ctr" "$stage/state" /var/lib/ladder >/dev/null
  buildah config --user 10001 --workingdir /var/lib/ladder --label org.opencontainers.image.source=ladder "$@" "$ctr"
  before=$(podman image inspect --format '{{.Id}}' "localhost/$name:$tag" 2>/dev/null || true)
  buildah commit --quiet --rm "$ctr" "localhost/$name:$tag" >/dev/null
  after=$(podman image inspect --format '{{.Id}}' "localhost/$name:$tag")
  # The replaced image, unless a container still uses it.
  [ -n "$before" ] && [ "$before" != "$after" ] && { podman rmi "$before" >/dev/null 2>&1 || true; }
  say "built localhost/$name:$tag ($(podman image inspect --format '{{.Size}}' "localhost/$name:$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
}

image ladder-coordinator ladder-coordinator ladder -- \
  --entrypoint '["/usr/local/bin/ladder-coordinator"]' --port 7070 --port 9464 \
  --cmd '["--listen", "0.0.0.0:7070", "--data-dir", "/var/lib/ladder", "--metrics-listen", "0.0.0.0:9464"]'
LIBS=1 image ladder-worker ladder-worker ladder-train -- \
  --entrypoint '["/usr/local/bin/ladder-worker"]' --port 9465 \
  --env LD_LIBRARY_PATH=/opt/ladder/lib --env LADDER_TRAINER=/usr/local/bin/ladder-train \
  --env LADDER_WORK_DIR=/var/lib/ladder/work

# Check the contents: the binaries run in their images, and libtorch is found.
run() { podman --runtime runc run --rm --network none --ulimit nofile=8192:8192 --ulimit nproc=4096:4096 "$@"; }
run --entrypoint /usr/local/bin/ladder-coordinator "localhost/ladder-coordinator:$tag" --version
run --entrypoint /usr/local/bin/ladder "localhost/ladder-coordinator:$tag" --version
run --entrypoint /usr/local/bin/ladder-worker "localhost/ladder-worker:$tag" --version
devices=$(run --entrypoint /usr/local/bin/ladder-train "localhost/ladder-worker:$tag" devices)
grep -q '"devices"' <<<"$devices" || { echo "images: ladder-train devices in the worker image said: $devices" >&2; exit 1; }
say "ladder-train finds libtorch in its image: $devices"
