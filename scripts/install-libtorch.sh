#!/usr/bin/env bash
# Installs libtorch from the PyPI wheel torch==2.11.0 into a cache outside the repo
# and points the build at it through the ignored link `.libtorch` in the repo root.
# Idempotent: a finished install is detected by its stamp file and reused.
set -euo pipefail

TORCH_VERSION=2.11.0
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}
dest="$cache/torch-$TORCH_VERSION"
stamp="$dest/.ladder-installed"

if [ -f "$stamp" ]; then
  echo "libtorch $TORCH_VERSION: already installed in $dest"
else
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { echo "error: $python not found; install Python 3 with pip" >&2; exit 1; }
  echo "libtorch $TORCH_VERSION: installing the PyPI wheel into $dest (about 4.6 GB)"
  rm -rf "$dest.partial"
  mkdir -p "$cache"
  "$python" -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$dest.partial" "torch==$TORCH_VERSION"
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  touch "$stamp"
  echo "libtorch $TORCH_VERSION: installed"
fi

[ -f "$dest/torch/lib/libtorch_cpu.so" ] || { echo "error: $dest/torch/lib/libtorch_cpu.so missing; remove $dest and rerun" >&2; exit 1; }
ln -sfn "$dest" "$repo/.libtorch"
echo "libtorch $TORCH_VERSION: linked $repo/.libtorch -> $dest"
