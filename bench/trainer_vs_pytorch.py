"""Runs ladder-train and the PyTorch reference side by side on the same token file, config and
step count; reports the tokens/s ratio, both final validation losses, whether the curves agree,
and (with --peak-tflops) MFU.

  python3 bench/trainer_vs_pytorch.py --bin target/release/ladder-train --data DIR \
      --device cpu --shapes 4x128 --n-ctx 128 --batch-seqs 64 --micro 16 --steps 60
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return events


def steady_tokens_per_s(events, skip):
    rates = [e["tokens_per_s"] for e in events if e["event"] == "metrics" and e["step"] > skip]
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shapes", default="4x128", help="comma list of LAYERSxD_MODEL")
    ap.add_argument("--d-head", type=int, default=64)
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--batch-seqs", type=int, default=64)
    ap.add_argument("--micro", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each, to cancel drift")
    ap.add_argument("--skip", type=int, default=3, help="warm-up steps left out of tokens/s")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="dense peak for MFU, e.g. 989 (H100 bf16)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in a.shapes.split(","):
            n_layer, d_model = (int(x) for x in shape.split("x"))
            cfg = os.path.join(tmp, f"{shape}.toml")
            with open(cfg, "w") as f:
                f.write(f'device = "{a.device}"\n' + (f"threads = {a.threads}\n" if a.threads else "") + f"""
[model]
n_layer = {n_layer}
d_model = {d_model}
d_head = {min(a.d_head, d_model)}
n_ctx = {a.n_ctx}
[data]
dir = "{a.data}"
[train]
batch_tokens = {a.batch_seqs * a.n_ctx}
micro_batch = {a.micro}
lr = {a.lr}
warmup_steps = {max(1, a.steps // 10)}
[stop]
steps = {a.steps}
[eval]
every = {a.steps}
windows = {4 * a.micro}
[checkpoint]
dir = "{tmp}/ckpt-{shape}"
""")
            ladder, torch_ref = [], []
            for _ in range(a.rounds):
                ladder.append(run([a.bin, "train", "--config", cfg]))
                torch_ref.append(run([sys.executable, os.path.join(HERE, "pytorch_ref.py"), "--config", cfg]))
            started = next(e for e in ladder[0] if e["event"] == "started")
            l_rate = statistics.median(steady_tokens_per_s(ev, a.skip) for ev in ladder)
            t_rate = statistics.median(steady_tokens_per_s(ev, a.skip) for ev in torch_ref)
            l_curve = [e["train_loss"] for e in ladder[0] if e["event"] == "metrics"]
            t_curve = [e["train_loss"] for e in torch_ref[0] if e["event"] == "metrics"]
            l_val = next(e for e in ladder[0] if e["event"] == "finished")["val_loss"]
            t_val = next(e for e in torch_ref[0] if e["event"] == "finished")["val_loss"]
            ckpt = next(e for e in ladder[0] if e["event"] == "checkpoint")["path"]
            # The final checkpoint as written by the last ladder run of this shape.
            ckpt = sorted(os.path.join(os.path.dirname(ckpt), d) for d in os.listdir(os.path.dirname(ckpt)))[-1]
            cross = run([sys.executable, os.path.join(HERE, "pytorch_ref.py"), "--config", cfg, "--check-checkpoint", ckpt])
            fpt = 3 * started["accounting"]["fwd_flops_per_token_exact"]
            row = {
                "shape": shape, "n": started["accounting"]["n"], "n_total": started["accounting"]["n_total"],
                "device": started["device"], "ladder_tokens_per_s": l_rate, "pytorch_tokens_per_s": t_rate,
                "ratio": l_rate / t_rate, "ladder_val_loss": l_val, "pytorch_val_loss": t_val,
                "val_loss_diff": abs(l_val - t_val),
                "max_train_loss_diff": max(abs(x - y) for x, y in zip(l_curve, t_curve)),
                "pytorch_val_loss_of_ladder_weights": cross[-1]["val_loss"],
            }
            if a.peak_tflops:
                row["ladder_mfu"] = fpt * l_rate / (a.peak_tflops * 1e12)
                row["pytorch_mfu"] = fpt * t_rate / (a.peak_tflops * 1e12)
            rows.append(row)
            print(json.dumps(row), flush=True)

    print()
    hdr = f"{'shape':>7} {'N':>11} {'ladder tok/s':>13} {'torch tok/s':>12} {'ratio':>6} {'ladder val':>10} {'torch val':>10} {'|Δval|':>8} {'max|Δtrain|':>11}"
    if a.peak_tflops:
        hdr += f" {'MFU ladder':>10} {'MFU torch':>9}"
    print(hdr)
    for r in rows:
        line = (f"{r['shape']:>7} {r['n']:>11,} {r['ladder_tokens_per_s']:>13,.0f} {r['pytorch_tokens_per_s']:>12,.0f} "
                f"{r['ratio']:>6.3f} {r['ladder_val_loss']:>10.4f} {r['pytorch_val_loss']:>10.4f} {r['val_loss_diff']:>8.4f} "
                f"{r['max_train_loss_diff']:>11.2e}")
        if a.peak_tflops:
            line += f" {r['ladder_mfu']:>10.3f} {r['pytorch_mfu']:>9.3f}"
        print(line)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
