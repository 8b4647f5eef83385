#!/usr/bin/env bash
# shellcheck disable=SC2154 # `bin` is set by the caller (see below)
# Shared by the deployment tests (slurm/test.sh, images/sweep.sh, images/compose.sh): the small
# CPU sweep they run and the check of its curves. Each caller defines `ladder` (the CLI with its
# address and token) and sets `bin` (where ladder-train is) before calling these.

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
