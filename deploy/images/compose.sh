#!/usr/bin/env bash
# Runs deploy/compose/docker-compose.yml with podman-compose (from PyPI) on the images of
# deploy/images/build.sh: a coordinator with TLS, role tokens and a token per worker, and two
# workers on a podman network, then the host's `ladder` CLI submits a 4-job sweep through the published port and
# every job must succeed with a whole curve.
# LADDER_BIN: the host's `ladder` and `ladder-train` (default target/release), LADDER_IMAGE_TAG.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/testlib.sh
source deploy/testlib.sh
root=$PWD
export LADDER_IMAGE_TAG=${LADDER_IMAGE_TAG:-dev}
bin=$root/${LADDER_BIN:-target/release}
say() { echo "compose: $*"; }
fail() {
  echo "compose FAILED: $*" >&2
  exit 1
}

tools=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}/podman-compose
if [ ! -x "$tools/bin/podman-compose" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet podman-compose==1.5.0
fi
# runc with explicit limits: crun refuses this host's hybrid cgroups, and podman's default
# RLIMIT_NOFILE is above the hard limit of an unprivileged container host.
work=$(mktemp -d /tmp/ladder-compose.XXXXXX)
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=8192:8192", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf
if ! why=$(podman run --rm --network host --entrypoint /usr/local/bin/ladder-coordinator \
  "localhost/ladder-coordinator:$LADDER_IMAGE_TAG" --version 2>&1); then
  echo "!!! COMPOSE SWEEP SKIPPED: podman cannot run a container here: $why !!!" >&2
  rm -rf "$work"
  [ "${LADDER_IMAGES_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi
project=ladder-ci-$$
compose() { "$tools/bin/podman-compose" -p "$project" -f "$work/compose/docker-compose.yml" "$@"; }
cleanup() {
  set +e
  compose logs >"$work/compose.log" 2>&1
  compose down -v >/dev/null 2>&1
  if [ "${LADDER_KEEP_TMP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The compose file beside its tls/ folder and .env, as a user would lay them out.
mkdir -p "$work/compose/tls"
cp deploy/compose/docker-compose.yml "$work/compose/"
tls=$work/compose/tls
issue_tls "$tls" "$work" coordinator DNS:coordinator,DNS:localhost,IP:127.0.0.1
user=$(new_token)
{
  echo "LADDER_TOKEN=$(new_token)"
  echo "LADDER_USER_TOKEN=$user"
} >"$work/compose/.env"
# Each worker its own token.
mkdir -p "$work/compose/worker-tokens"
for w in worker-0 worker-1; do new_token >"$work/compose/worker-tokens/$w"; done
chmod 644 "$work/compose/worker-tokens"/*

(cd "$work/compose" && compose up -d >"$work/up.log" 2>&1) || { tail -20 "$work/up.log" >&2; fail "podman-compose up"; }
say "podman-compose $("$tools/bin/podman-compose" --version 2>/dev/null | awk '/podman-compose/ { print $NF }') up: coordinator, worker-0, worker-1"

export LADDER_COORDINATOR=https://localhost:7070 LADDER_TLS_CA=$tls/ca.crt LADDER_TOKEN=$user
for _ in $(seq 150); do
  [ "$("$bin/ladder" --output json workers 2>/dev/null | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))' 2>/dev/null)" = 2 ] && break
  sleep 0.2
done
ladder() { "$bin/ladder" "$@"; }
sweep_through_workers compose "$work" worker-0 worker-1
say "passed"
