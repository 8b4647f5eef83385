#!/usr/bin/env bash
# Issue 20, must-show 5: the critical batch size by branching on two seeds of the same trunks
# (bench/branches/cbs_repeat.toml: two sizes, four points, k = 1 to 8 on windows of 40 steps at k = 8,
# 327,680 tokens; the CBS by token overhead). Prints the CBS of both seeds at every point and the share within a factor of 2
# (target: at least 75%). LADDER_BIN: the binaries (default target/release, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LADDER_BIN:-target/release}
[ -x "$bin/ladder" ] || cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
# LADDER_BENCH_STATE=DIR keeps the sweep's state there (to refit it under another rule).
if [ -n "${LADDER_BENCH_STATE:-}" ]; then
  state=$LADDER_BENCH_STATE
  mkdir -p "$state"
else
  state=$(mktemp -d)
  trap 'rm -rf "$state"' EXIT
fi
start=$(date +%s)
# LADDER_BENCH_SPEC: another spec of the same shape (bench/branches/cbs_repeat_rewarmup.toml).
spec=${LADDER_BENCH_SPEC:-bench/branches/cbs_repeat.toml}
"$bin/ladder" --output json local "$spec" --data-dir "$state" --trainer "$bin/ladder-train" \
  >"$state/report.json" 2>"$state/log" || { tail -5 "$state/log" >&2; exit 1; }
echo "sweep took $(( $(date +%s) - start )) s"
# LADDER_BENCH_KEEP=FILE keeps the fit report (JSON) for another look.
[ -z "${LADDER_BENCH_KEEP:-}" ] || cp "$state/report.json" "$LADDER_BENCH_KEEP"
python3 - "$state/report.json" <<'PY'
import collections, json, sys
r = json.load(open(sys.argv[1]))
r = r.get("report", r)  # the fit report, alone or inside an envelope
by = collections.defaultdict(list)
for p in r["cbs"]:
    by[(p["n"], p["step"])].append(p)
within = total = 0
print(f"{'N':>8} {'tokens':>8} {'CBS seed a':>11} {'CBS seed b':>11} {'ratio':>6}  B_simple/CBS")
for (n, step), ps in sorted(by.items()):
    if len(ps) != 2:
        continue
    a, b = sorted(ps, key=lambda p: p["trunk"])
    ratio = max(a["cbs"], b["cbs"]) / min(a["cbs"], b["cbs"])
    total += 1
    within += ratio <= 2
    mark = lambda p: ("≥" if p["lower_bound"] else "") + f"{p['cbs']:.0f}"
    simple = " / ".join(f"{p['ratio']:.2f}" if p.get("ratio") else "-" for p in (a, b))
    print(f"{n:>8.0f} {a['tokens']:>8.0f} {mark(a):>11} {mark(b):>11} {ratio:>6.2f}  {simple}")
share = within / total if total else 0
print(f"{within} of {total} points within a factor of 2 ({100 * share:.0f}%; target: at least 75%)")
bounds = sum(1 for ps in by.values() if len(ps) == 2 and all(p["lower_bound"] for p in ps))
print(f"{bounds} of them lower bounds at both seeds (every batch tried kept up): agreement there says only that")
sys.exit(0 if total >= 8 and share >= 0.75 else 1)
PY
