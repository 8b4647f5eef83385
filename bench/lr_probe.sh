#!/usr/bin/env bash
# The learning rate per size, measured: bench/branches/lr_probe.toml trains seven of the demo's
# sizes at three peak rates each (trunks and five cooldowns, Moby-Dick bytes) in one `ladder
# local` run. Prints the cooldown ends per size, D and rate; the rate with the lowest mean loss
# over D per size; then `ladder fit --holdout 1` twice, on the points at the single rate 3e-3 (the
# reference) and on the best rate per (N, D). Fails unless the best rate of the largest size is
# below that of the smallest (the trend the demo's per-width rate follows). About 17 min on 2
# cores. LADDER_BIN: the binaries (default target/release, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/serve.sh
source bench/serve.sh
serve_sweep bench/branches/lr_probe.toml
"$bin/ladder" --coordinator "$url" --output json jobs lr-probe >"$state/jobs.json"
python3 - "$state" <<'PY'
import collections, json, sys
state = sys.argv[1]
by = collections.defaultdict(dict)  # (n_layer, d_model, N, D) -> {lr: final val loss}
for j in json.load(open(f"{state}/jobs.json")):
    b = j.get("branch")
    if b and b.get("kind") == "cooldown":
        by[(j["n_layer"], j["d_model"], j["n"], b["to_tokens"])][j["lr"]] = j["val_loss"]
lrs = sorted({lr for v in by.values() for lr in v})
print(f"{'shape':>7} {'N':>8} {'D':>8}  " + "  ".join(f"{x:>8.1e}" for x in lrs))
for k in sorted(by, key=lambda k: (k[2], k[3])):
    v = by[k]
    print(f"{k[0]}x{k[1]:<5} {k[2]:>8} {k[3]:>8}  " + "  ".join(f"{v[x]:>8.4f}" if x in v else f"{'-':>8}" for x in lrs))
mean = collections.defaultdict(lambda: collections.defaultdict(list))
for (L, d, n, D), v in by.items():
    for lr, loss in v.items():
        mean[(L, d, n)][lr].append(loss)
best = {}
for s in sorted(mean, key=lambda s: s[2]):
    m = {lr: sum(x) / len(x) for lr, x in mean[s].items()}
    best[s] = min(m, key=m.get)
    print(f"{s[0]}x{s[1]}: best rate (lowest mean loss over D) {best[s]:.1e}; lr · d_model = {best[s] * s[1]:.3f}")
for name, pick in (("ref-3e-3", lambda v: v.get(3e-3)), ("best", lambda v: min(v.values()))):
    with open(f"{state}/{name}.csv", "w") as f:
        f.write("N,D,loss\n")
        for k in sorted(by):
            f.write(f"{k[2]},{k[3]},{pick(by[k])}\n")
sizes = sorted(best, key=lambda s: s[2])
sys.exit(0 if best[sizes[-1]] < best[sizes[0]] else 1)
PY
for f in ref-3e-3 best; do
  echo "== fits to the cooldown ends, $f"
  "$bin/ladder" fit --csv "$state/$f.csv" --holdout 1 --law chinchilla,nd | grep -E "^Chinchilla|^L\(N|  α|  β|error"
done
