#!/usr/bin/env bash
# A sweep through the containers: the images of deploy/images/build.sh run under podman (runc,
# host network), a coordinator with TLS and role tokens and two CPU workers; the host's `ladder`
# CLI registers a dataset and submits a 4-job sweep; every job must succeed with a whole curve.
# LADDER_BIN: the host's `ladder` and `ladder-train` (default target/release), LADDER_IMAGE_TAG.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=deploy/testlib.sh
source deploy/testlib.sh
tag=${LADDER_IMAGE_TAG:-dev}
bin=${LADDER_BIN:-target/release}
say() { echo "containers: $*"; }
fail() {
  echo "containers FAILED: $*" >&2
  exit 1
}

# Where containers cannot run here, say why and skip, loudly (LADDER_IMAGES_REQUIRED=1: fail).
if ! why=$(podman --runtime runc run --rm --network host --ulimit nofile=8192:8192 --ulimit nproc=4096:4096 \
  --entrypoint /usr/local/bin/ladder-coordinator "localhost/ladder-coordinator:$tag" --version 2>&1); then
  echo "!!! CONTAINER SWEEP SKIPPED: podman cannot run a container here: $why !!!" >&2
  [ "${LADDER_IMAGES_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi
work=$(mktemp -d /tmp/ladder-containers.XXXXXX)
names=()
cleanup() {
  set +e
  for n in "${names[@]:-}"; do
    [ -n "$n" ] && podman logs "$n" >"$work/$n.log" 2>&1 && podman rm -f "$n" >/dev/null 2>&1
  done
  if [ "${LADDER_KEEP_TMP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
run() { podman --runtime runc run -d --network host --ulimit nofile=8192:8192 --ulimit nproc=4096:4096 "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# A CA and the coordinator's certificate for localhost.
tls=$work/tls
issue_tls "$tls" "$work/ca" localhost DNS:localhost,IP:127.0.0.1
mkdir -p "$work/data"
chown 10001:10001 "$work/data"
admin=$(new_token)
user=$(new_token)
worker=$(new_token)

run --name ladder-ci-coordinator -v "$tls:/etc/ladder/tls:ro" -v "$work/data:/var/lib/ladder" \
  -e LADDER_TOKEN="$admin" -e LADDER_USER_TOKEN="$user" -e LADDER_WORKER_TOKEN="$worker" \
  "localhost/ladder-coordinator:$tag" --listen "127.0.0.1:$port" --data-dir /var/lib/ladder \
  --tls-cert /etc/ladder/tls/tls.crt --tls-key /etc/ladder/tls/tls.key >/dev/null
names+=(ladder-ci-coordinator)
for i in 0 1; do
  run --name "ladder-ci-worker-$i" -v "$tls:/etc/ladder/tls:ro" -e LADDER_TOKEN="$worker" \
    -e LADDER_TLS_CA=/etc/ladder/tls/ca.crt "localhost/ladder-worker:$tag" \
    --coordinator "https://localhost:$port" --name "container-$i" --slots cpu --cpu-cores 1 >/dev/null
  names+=("ladder-ci-worker-$i")
done
say "coordinator and 2 workers started (podman $(podman --version | awk '{ print $3 }'), TLS on localhost:$port)"

export LADDER_COORDINATOR=https://localhost:$port LADDER_TLS_CA=$tls/ca.crt LADDER_TOKEN=$user
for _ in $(seq 100); do "$bin/ladder" workers >/dev/null 2>&1 && break; sleep 0.2; done
ladder() { "$bin/ladder" "$@"; }
sweep_through_workers containers "$work" container-0 container-1
say "passed"
