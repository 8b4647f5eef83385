# shellcheck shell=bash
# Sourced by the benches that read a finished sweep back from its coordinator. `serve_sweep SPEC`
# builds the release binaries if missing, runs `ladder local SPEC --serve` on a fresh state folder
# until the sweep has ended, and sets bin, state and url; the EXIT trap stops the server and
# removes the folder. LADDER_BIN: the binaries (default target/release).
bin=${LADDER_BIN:-target/release}

serve_sweep() {
  [ -x "$bin/ladder" ] || cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
  state=$(mktemp -d)
  trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$state"' EXIT
  local start
  start=$(date +%s)
  "$bin/ladder" local "$1" --data-dir "$state" --trainer "$bin/ladder-train" --serve >"$state/out" 2>"$state/log" &
  pid=$!
  until grep -q "serving at" "$state/log"; do
    kill -0 "$pid" 2>/dev/null || { tail -5 "$state/log" >&2; exit 1; }
    sleep 2
  done
  # shellcheck disable=SC2034 # read by the script that sources this file
  url=$(grep -m1 -o "serving at http://[0-9.:]*" "$state/log" | cut -d' ' -f3)
  echo "sweep took $(($(date +%s) - start)) s"
}
