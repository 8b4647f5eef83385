#!/usr/bin/env bash
# shellcheck disable=SC2154 # `bin` is set by the caller (see below)
# Shared by the deployment tests (slurm/test.sh, images/sweep.sh, images/compose.sh): tokens, a
# test CA and certificate, the small CPU sweep they run and the check of its curves. Each caller defines `ladder` (the CLI with its
# address and token) and sets `bin` (where ladder-train is) before calling these.

# A random bearer token (48 hex digits).
new_token() {
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# A one-day test CA and a server certificate signed by it: ca.crt, tls.key and tls.crt in $1
# (the folder mounted into containers); the CA's key and the request stay in $2.
# $3: the certificate's CN; $4: its subjectAltName (e.g. DNS:localhost,IP:127.0.0.1).
issue_tls() {
  local tls=$1 scratch=$2 cn=$3 san=$4
  mkdir -p "$tls" "$scratch"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=ladder-ci-ca \
    -keyout "$scratch/ca.key" -out "$tls/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$tls/tls.key" -out "$scratch/tls.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$scratch/ext"
  openssl x509 -req -in "$scratch/tls.csr" -CA "$tls/ca.crt" -CAkey "$scratch/ca.key" -CAcreateserial -days 1 \
    -extfile "$scratch/ext" -out "$tls/tls.crt" 2>/dev/null
  chmod 644 "$tls"/*
}

# Registers the dataset "licenses": Debian's license texts (present on every Debian), byte-level.
# $1: scratch folder; further arguments: the texts (default GPL-3 and Apache-2.0).
register_licenses() {
  local work=$1
  shift
  local texts=("$@")
  [ ${#texts[@]} -gt 0 ] || texts=(GPL-3 Apache-2.0)
  (cd /usr/share/common-licenses && cat "${texts[@]}") >"$work/corpus.txt"
  ladder data add licenses "$work/corpus.txt" --tokenizer byte --val-fraction 0.05 --trainer "$bin/ladder-train" >/dev/null
}

# Writes a 4-job sweep (1x32 and 2x32, seeds 0 and 1) on "licenses" to stdout.
# $1 name, $2 steps, $3 eval_every, $4 checkpoint_every; further arguments: extra lines, each
# `[train] key = value` or `[resources] key = value`.
sweep_spec() {
  local name=$1 steps=$2 eval_every=$3 checkpoint_every=$4
  shift 4
  local train=() resources=() line
  for line in "$@"; do
    case "$line" in
    "[train] "*) train+=("${line#\[train\] }") ;;
    "[resources] "*) resources+=("${line#\[resources\] }") ;;
    esac
  done
  cat <<EOF
name = "$name"
dataset = "licenses"
seeds = [0, 1]
[model]
n_ctx = 32
d_head = 16
shapes = [[1, 32], [2, 32]]
[train]
batch_tokens = 512
micro_batch = 4
steps = $steps
lr = 0.003
eval_every = $eval_every
eval_windows = 8
checkpoint_every = $checkpoint_every
EOF
  printf '%s\n' "${train[@]}"
  echo "[resources]"
  echo 'device = "cpu"'
  echo "threads = 1"
  printf '%s\n' "${resources[@]}"
}

# Exports sweep $1 into $2 (JSONL) and checks that it has 4 curves, each steps 1..$3 exactly once;
# $4 says what trained them, for the line printed on success.
check_whole_curves() {
  ladder export "$1" --format jsonl --out "$2"
  python3 - "$2" "$3" "$4" <<'EOF'
import collections, json, sys
path, total, who = sys.argv[1], int(sys.argv[2]), sys.argv[3]
steps = collections.defaultdict(list)
for line in open(path):
    r = json.loads(line)
    steps[r["job"]].append(r["step"])
for job, s in sorted(steps.items()):
    assert s == list(range(1, total + 1)), f"job {job}: {len(s)} points, not steps 1..{total} once each"
assert len(steps) == 4, f"{len(steps)} curves"
print(f"{who}: {len(steps)} curves hold steps 1..{total} exactly once")
EOF
}

# Runs sweep $1 (steps 1..60) through the workers already connected, then checks that exactly the
# workers named after $3 ran it and that its 4 curves are whole. $2: scratch folder. Calls `fail`
# and `say` of the caller.
sweep_through_workers() {
  local name=$1 work=$2
  shift 2
  register_licenses "$work"
  sweep_spec "$name" 60 20 20 >"$work/sweep.toml"
  ladder submit "$work/sweep.toml" --watch >"$work/watch.out" 2>&1 || {
    tail -5 "$work/watch.out" >&2
    fail "the sweep did not succeed"
  }
  ladder --output json workers | python3 -c '
import json, sys
names = sorted(w["name"] for w in json.load(sys.stdin))
assert names == sorted(sys.argv[1:]), names
' "$@"
  check_whole_curves "$name" "$work/curves.jsonl" 60 "$name" || fail "a curve is not whole"
}
