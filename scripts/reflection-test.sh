#!/usr/bin/env bash
# gRPC reflection through Python's standard clients: starts the built coordinator with a token on
# a free loopback port and runs scripts/reflection_client.py (grpcio-reflection, v1alpha and v1;
# grpcio-health-checking) against it. The packages are installed from PyPI into a venv in the
# cache (~/.cache/ladder/py), not the repo. Env: LADDER_BIN (default target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}/py
bin=${LADDER_BIN:-target/debug}
[ -x "$bin/ladder-coordinator" ] || { echo "reflection-test: $bin/ladder-coordinator not found: build first" >&2; exit 1; }
if [ ! -x "$py/bin/python" ] || ! "$py/bin/python" -c 'import grpc_reflection, grpc_health' 2>/dev/null; then
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet grpcio==1.85.1 grpcio-reflection==1.85.1 grpcio-health-checking==1.85.1
fi
tmp=$(mktemp -d)
token=$(python3 -c "import secrets; print(secrets.token_hex(32))")
LADDER_TOKEN="$token" "$bin/ladder-coordinator" --listen 127.0.0.1:0 --data-dir "$tmp/data" >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's/^listening on //p' "$tmp/out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "reflection-test: the coordinator printed no address" >&2; cat "$tmp/err" >&2; exit 1; }
"$py/bin/python" scripts/reflection_client.py "$addr" "$token"
echo "reflection test passed"
