#!/usr/bin/env bash
# Issue 20, must-show 2: cooldown branches of constant-LR trunks against from-scratch cosine runs
# of the same D, at two sizes and two D, in one `ladder local` run (bench/branches/
# cooldown_vs_cosine.toml, on the demo's Moby-Dick bytes), at two fixed learning rates and at
# the demo's per-width rate. Prints each pair's final validation losses and their ratio, then each
# schedule at its own best rate; fails unless, at one learning rate (or rule), every pair is
# within 1%. LADDER_BIN: the binaries (default target/release, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/serve.sh
source bench/serve.sh
serve_sweep bench/branches/cooldown_vs_cosine.toml
"$bin/ladder" --coordinator "$url" --output json jobs bench-cooldown-vs-cosine | python3 -c '
import json, sys
jobs = json.load(sys.stdin)
# A pair: one shape at one resolved peak rate (j["lr"]); its rule is the cosine job'"'"'s spec
# (a number, or the per-width table that gives each shape its own rate).
def key(j): return (j["n_layer"], j["d_model"], j["lr"])
def rule(spec): return f"{spec:.0e}" if isinstance(spec, float) else f"{spec['"'"'value'"'"']:.0e}·{spec['"'"'at_d_model'"'"']}/d"
cos = {}; cool = {}; rules = {}
for j in jobs:
    val = j.get("val_loss")
    if j.get("branch") and j["branch"].get("kind") == "cooldown":
        cool[(key(j), j["branch"]["to_tokens"])] = val
    elif j["config"]["train"]["schedule"] == "cosine":
        cos[(key(j), j["config"]["stop"]["tokens"])] = val
        rules[key(j)] = rule(j["config"]["train"]["lr"])
worst = {}
print("%8s %12s %7s %9s %8s %8s %7s" % ("shape", "rule", "lr", "D", "cosine", "cooldown", "ratio"))
for (k, d), c in sorted(cos.items()):
    b = cool[(k, d)]
    r = b / c
    worst[rules[k]] = max(worst.get(rules[k], 0.0), abs(r - 1))
    print(f"{k[0]}x{k[1]:<6} {rules[k]:>12} {k[2]:>7.0e} {d:>9.0f} {c:>8.4f} {b:>8.4f} {r:>7.4f}")
for lr, w in sorted(worst.items()):
    print(f"lr {lr}: largest difference {100 * w:.2f}% (target: within 1%)")
# Each schedule at its own best rate of those run (tuned against tuned, as Hagele et al. compare).
print("each at its best rate:")
for shape, d in sorted({(k[:2], d) for (k, d) in cos}):
    best = lambda runs: min((v, k[2]) for (k, dd), v in runs.items() if k[:2] == shape and dd == d)
    (c, clr), (b, blr) = best(cos), best(cool)
    print(f"{shape[0]}x{shape[1]:<6} D {d:>9.0f}: cosine {c:.4f} at {clr:.0e}, cooldown {b:.4f} at {blr:.0e}, ratio {b / c:.4f}")
# Pass: at one learning rate, every pair (two sizes, two D) is within 1%.
sys.exit(0 if len(cos) >= 4 and min(worst.values()) <= 0.01 else 1)
'
