#!/usr/bin/env bash
# Runs deploy/slurm/ladder-workers.sbatch under a real one-node Slurm on this machine:
#   1. installs slurm-wlm and munge where they are missing (Debian, as root);
#   2. writes a one-node slurm.conf in a scratch folder and starts munged, slurmctld and slurmd;
#   3. starts a coordinator (TLS, a user token, a token per worker task) and submits a small CPU sweep;
#   4. sbatch: the workers start through srun and train;
#   5. scancel mid-job: the workers checkpoint, upload and release their leases;
#   6. a second allocation finishes the sweep from those checkpoints, with no restart charged,
#      and every curve holds steps 1..S exactly once;
#   7. a worker started by srun with no reachable coordinator exits non-zero naming the address.
# Where Slurm cannot run here it says why and skips, loudly (LADDER_SLURM_REQUIRED=1: fails).
# LADDER_BIN: the binaries (default target/debug, built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
# shellcheck source=deploy/testlib.sh
source deploy/testlib.sh

skip() {
  echo "!!! SLURM TEST SKIPPED: $* !!!" >&2
  [ "${LADDER_SLURM_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
}
fail() {
  echo "slurm test FAILED: $*" >&2
  exit 1
}
say() { echo "slurm test: $*"; }

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  [ "$(id -u)" = 0 ] || skip "slurm-wlm and munge are not installed and this is not root"
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  say "installing slurm-wlm and munge"
  apt-get update -qq || skip "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null ||
    skip "apt-get install slurm-wlm munge failed"
fi
[ "$(id -u)" = 0 ] || skip "slurmd must run as root to start jobs for any user"

# Binaries.
bin=${LADDER_BIN:-$root/target/debug}
if [ ! -x "$bin/ladder-worker" ] || [ ! -x "$bin/ladder-coordinator" ] || [ ! -x "$bin/ladder-train" ] || [ ! -x "$bin/ladder" ]; then
  [ -n "${LADDER_BIN:-}" ] && fail "LADDER_BIN=$bin lacks ladder, ladder-coordinator, ladder-worker or ladder-train"
  cargo build --bins -p ladder-coordinator -p ladder-worker -p ladder-trainer -p ladder-cli
fi

work=$(mktemp -d /tmp/ladder-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  set +e
  [ -n "${SLURM_CONF:-}" ] && scancel --quiet --full "${jobs[@]:-}" 2>/dev/null
  [ -f "$work/slurmd.pid" ] && kill "$(cat "$work/slurmd.pid")" 2>/dev/null
  [ -f "$work/slurmctld.pid" ] && kill "$(cat "$work/slurmctld.pid")" 2>/dev/null
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  sleep 1
  if [ "${LADDER_KEEP_TMP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
jobs=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 2. munge, then a one-node Slurm.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || { mungekey --create --force 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge && chown munge:munge /run/munge /var/lib/munge /var/log/munge
  runuser -u munge -- /usr/sbin/munged || skip "munged does not start here"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null 2>&1 || skip "munged started but does not answer"
fi
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF=$work/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=ladder-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=60
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" || skip "slurmctld does not start here (see $work/slurmctld.log)"
slurmd -f "$SLURM_CONF" || skip "slurmd does not start here (see $work/slurmd.log)"
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -x idle >/dev/null && break
  sleep 0.2
done
sinfo -h -o %T | grep -x idle >/dev/null || skip "the node never became idle: $(sinfo 2>&1 | tail -1)"
say "Slurm $(sinfo -V) up: one node $host, $cpus CPUs"

# 3. The coordinator, with TLS, a user token and a token per worker task, and a small sweep.
port=$(free_port)
user_token=$(new_token)
mkdir -p "$work/worker-tokens"
new_token >"$work/worker-tokens/0"
issue_tls "$work/tls" "$work/ca" localhost DNS:localhost,IP:127.0.0.1
env -u LADDER_TOKEN LADDER_USER_TOKEN="$user_token" \
  "$bin/ladder-coordinator" --listen "127.0.0.1:$port" --data-dir "$work/coord" --lease-ttl-ms 3000 \
  --worker-tokens-file "$work/worker-tokens" --tls-cert "$work/tls/tls.crt" --tls-key "$work/tls/tls.key" \
  >"$work/coordinator.out" 2>"$work/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/coordinator.out" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$work/coordinator.out" || fail "the coordinator did not start: $(tail -3 "$work/coordinator.log")"
export LADDER_COORDINATOR=https://127.0.0.1:$port LADDER_TLS_CA=$work/tls/ca.crt
ladder() { LADDER_TOKEN=$user_token "$bin/ladder" "$@"; }

register_licenses "$work" GPL-3 Apache-2.0 GPL-2
sweep_spec slurm 400 50 40 "[train] warmup_steps = 10" "[resources] max_restarts = 0" >"$work/sweep.toml"
ladder submit "$work/sweep.toml" >/dev/null

jobs_json() { ladder --output json jobs slurm; }
check() { jobs_json | python3 -c "import json, sys; js = json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
wait_until() { # seconds, what, python condition over js
  local deadline=$((SECONDS + $1))
  until check "$3"; do
    [ $SECONDS -lt $deadline ] || { jobs_json >&2; fail "timed out waiting for $2"; }
    sleep 0.5
  done
}

# 4. The first allocation.
export LADDER_WORKER_TOKENS=$work/worker-tokens LADDER_BIN=$bin LADDER_SLOTS=cpu,cpu
submit_workers() {
  sbatch --parsable --nodes=1 --gpus-per-node=0 --cpus-per-task="$cpus" --time=30 \
    -o "$work/alloc-%j.out" -e "$work/alloc-%j.out" "$@" deploy/slurm/ladder-workers.sbatch
}
first=$(submit_workers)
jobs+=("$first")
say "allocation $first submitted"
wait_until 180 "a checkpoint in the first allocation" \
  "any(j['state'] == 'running' and j['checkpoint_step'] > 0 and j['step'] > j['checkpoint_step'] for j in js)"

# 5. scancel mid-job: checkpoints upload and the leases are released.
say "scancel $first mid-job: $(jobs_json | python3 -c "import json, sys; print(', '.join(f\"job {j['id']} at step {j['step']}\" for j in json.load(sys.stdin) if j['state'] == 'running'))")"
scancel "$first"
deadline=$((SECONDS + 120))
while squeue -h -j "$first" 2>/dev/null | grep . >/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "allocation $first did not end after scancel"
  sleep 0.5
done
check "all(j['state'] in ('queued', 'succeeded') for j in js)" ||
  { jobs_json >&2; fail "after scancel some job is not back in the queue (leases not released)"; }
check "all(j['restarts'] == 0 for j in js)" || { jobs_json >&2; fail "scancel charged a restart"; }
check "any(j['state'] == 'queued' and j['checkpoint_step'] > 0 for j in js)" ||
  { jobs_json >&2; fail "no job left a checkpoint to resume from"; }
sed 's/\x1b\[[0-9;]*m//g' "$work/coordinator.log" | grep -E "attempt ended .*state=Queued failure=None" >/dev/null ||
  fail "the coordinator logged no released lease"
say "after scancel: $(jobs_json | python3 -c "import json, sys; print(', '.join(f\"job {j['id']} {j['state']} checkpoint {j['checkpoint_step']}\" for j in json.load(sys.stdin)))")"

# 6. The second allocation finishes the sweep from the checkpoints.
second=$(submit_workers)
jobs+=("$second")
say "allocation $second submitted"
wait_until 600 "the sweep to finish in the second allocation" "all(j['state'] == 'succeeded' for j in js)"
check "all(j['restarts'] == 0 for j in js)" || { jobs_json >&2; fail "a restart was charged"; }
check "any(j['resumed_from_step'] > 0 for j in js)" || { jobs_json >&2; fail "no job resumed from a checkpoint"; }
check_whole_curves slurm "$work/curves.jsonl" 400 "slurm test" || fail "a curve is not whole"
scancel "$second"
say "sweep finished across allocations $first and $second: $(jobs_json | python3 -c "import json, sys; print(', '.join(f\"job {j['id']} resumed from {j['resumed_from_step']}\" for j in json.load(sys.stdin)))")"

# 7. No reachable coordinator: the worker exits non-zero and names the address.
dead=$(free_port)
set +e
LADDER_COORDINATOR=https://127.0.0.1:$dead LADDER_REGISTER_TIMEOUT=3 submit_workers --wait >/dev/null
code=$?
set -e
out=$(cat "$work"/alloc-*.out)
[ "$code" -ne 0 ] || fail "an allocation whose workers reach no coordinator ended with status 0"
grep -q "no coordinator answered at https://127.0.0.1:$dead" <<<"$out" ||
  fail "the worker's error does not name the address: $(tail -3 <<<"$out")"
say "a worker with no coordinator exits non-zero: $(grep -m1 -o "no coordinator answered at [^ ]* within [^ ]* s" <<<"$out")"
say "passed"
