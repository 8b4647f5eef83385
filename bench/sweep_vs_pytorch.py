"""Runs one sweep through `ladder local` and through bench/plain_loop.py in alternating rounds and
reports: wall time of each (ladder from its start to the sweep's end, fits excluded; the plain loop
as a whole process, Python's import of torch included), their ratio, and L(N) fitted by ladder's
own fitter to each one's best validation losses (the plain loop's through `ladder fit --csv`).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

SPEC = """name = "bench-sweep"
dataset = "bench"
seeds = [0]
[model]
n_ctx = {n_ctx}
d_head = {d_head}
shapes = [{shapes}]
[train]
batch_tokens = {batch}
steps = {steps}
lr = {lr}
warmup_steps = {warmup}
micro_batch = {micro}
eval_every = {eval_every}
eval_windows = {eval_windows}
checkpoint_every = {checkpoint_every}
[resources]
device = "cpu"
"""


def law(report):
    l = report.get("report", report).get("l_n")
    if not l:
        return None
    return {"alpha_N": l["alpha"]["value"], "alpha_lo": l["alpha"]["lo"], "alpha_hi": l["alpha"]["hi"],
            "N_c": l["x_c"]["value"], "r2": l["r2"], "points": l["points"]}


def run_ladder(a, tmp, round_):
    spec = os.path.join(tmp, "spec.toml")
    shapes = ", ".join("[%s, %s]" % tuple(s.split("x")) for s in a.shapes.split(","))
    with open(spec, "w") as f:
        f.write(SPEC.format(n_ctx=a.n_ctx, d_head=a.d_head, shapes=shapes, batch=a.batch_tokens, steps=a.steps,
                            lr=a.lr, warmup=a.warmup, micro=a.micro, eval_every=a.eval_every,
                            eval_windows=a.eval_windows, checkpoint_every=a.checkpoint_every))
    state = os.path.join(tmp, f"ladder-{round_}")
    cmd = [a.ladder, "--output", "json", "local", spec, "--data-dir", state, "--trainer", a.trainer,
           "--dataset", f"bench={a.data}"]
    env = dict(os.environ, LADDER_LOG=os.environ.get("LADDER_LOG", "ladder_worker=info"))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    total = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"ladder local failed ({p.returncode}):\n{p.stderr[-4000:]}")
    # The sweep's wall time: from the process start to the sweep's end (the fits come after).
    m = re.search(r"sweep ended after \d+ s \(([0-9.]+) s since ladder started\)", p.stderr)
    report = json.loads(p.stdout)
    logs = os.path.dirname(os.path.abspath(a.out)) if a.out else tmp
    with open(os.path.join(logs, f"ladder-{round_}.log"), "w") as f:
        f.write(p.stderr)
    profiles = [l for l in p.stderr.splitlines() if "attempt profile" in l]
    return {"sweep_s": float(m.group(1)) if m else None, "process_s": total, "l_n": law(report),
            "profiles": len(profiles)}


def run_plain(a, tmp, round_):
    out = os.path.join(tmp, f"plain-{round_}.csv")
    cmd = [sys.executable, os.path.join(HERE, "plain_loop.py"), "--data", a.data, "--shapes", a.shapes,
           "--n-ctx", str(a.n_ctx), "--d-head", str(a.d_head), "--batch-tokens", str(a.batch_tokens),
           "--micro", str(a.micro), "--steps", str(a.steps), "--lr", str(a.lr), "--warmup", str(a.warmup),
           "--eval-every", str(a.eval_every), "--eval-windows", str(a.eval_windows), "--out", out]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"plain loop failed ({p.returncode}):\n{p.stderr[-4000:]}")
    runs = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{") and "shape" in l]
    f = subprocess.run([a.ladder, "--output", "json", "fit", "--csv", out], capture_output=True, text=True)
    if f.returncode != 0:
        sys.exit(f"ladder fit --csv failed ({f.returncode}):\n{f.stderr[-2000:]}")
    return {"process_s": total, "runs": runs, "l_n": law(json.loads(f.stdout))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ladder", required=True)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--shapes", default="1x48,2x64,2x96,3x128,4x192")
    ap.add_argument("--steps", type=int, default=535)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--micro", type=int, default=16)
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--d-head", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            # Alternate which goes first, so drift in the machine's speed cancels.
            order = ["ladder", "plain"] if r % 2 == 0 else ["plain", "ladder"]
            got = {}
            for who in order:
                got[who] = run_ladder(a, tmp, r) if who == "ladder" else run_plain(a, tmp, r)
                print(json.dumps({"round": r, who: got[who]}), flush=True)
            rows.append(got)
    ladder_s = statistics.median(r["ladder"]["sweep_s"] for r in rows)
    plain_s = statistics.median(r["plain"]["process_s"] for r in rows)
    plain_train = statistics.median(sum(x["seconds"] for x in r["plain"]["runs"]) for r in rows)
    print()
    print(f"sweep: {a.shapes} x {a.steps} steps of {a.batch_tokens} tokens, micro-batch {a.micro}, {a.rounds} round(s)")
    print(f"ladder local (start to sweep end): {ladder_s:.1f} s")
    print(f"plain PyTorch loop (whole process): {plain_s:.1f} s; its training loops alone: {plain_train:.1f} s")
    print(f"ratio ladder/plain: {ladder_s / plain_s:.3f} (against the training loops alone: {ladder_s / plain_train:.3f})")
    for i, run in enumerate(rows[-1]["plain"]["runs"]):
        print(f"  plain {run['shape']:>6}: {run['seconds']:.1f} s, best val {run['loss']:.4f}")
    for who in ("ladder", "plain"):
        l = rows[-1][who]["l_n"]
        if l:
            print(f"L(N) {who:>6}: alpha_N {l['alpha_N']:.4f} [{l['alpha_lo']:.4f}, {l['alpha_hi']:.4f}], "
                  f"N_c {l['N_c']:.3e}, R2 {l['r2']:.4f}, {l['points']} points")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"rows": rows, "ladder_s": ladder_s, "plain_s": plain_s, "ratio": ladder_s / plain_s}, f, indent=1)


if __name__ == "__main__":
    main()
