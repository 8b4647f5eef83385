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
    ap.add_argument("--baselines", default="ref",
                    help="comma list of pytorch_ref.py modes to race: ref (the exact mirror), eager, compile")
    ap.add_argument("--gns-cost", action="store_true", help="also run ladder-train with the noise scale off")
    ap.add_argument("--vocab", type=int, default=0, help="model vocabulary (default: the dataset's)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    baselines = [b for b in a.baselines.split(",") if b]

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
{f"vocab = {a.vocab}" if a.vocab else ""}
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
            cfg_nogns = cfg.replace(".toml", "-nogns.toml")
            with open(cfg) as src, open(cfg_nogns, "w") as dst:
                dst.write("gns = false\n" + src.read())
            ladder, nogns, base = [], [], {b: [] for b in baselines}
            for _ in range(a.rounds):
                ladder.append(run([a.bin, "train", "--config", cfg]))
                if a.gns_cost:
                    nogns.append(run([a.bin, "train", "--config", cfg_nogns]))
                for b in baselines:
                    base[b].append(run([sys.executable, os.path.join(HERE, "pytorch_ref.py"), "--config", cfg, "--mode", b]))
            started = next(e for e in ladder[0] if e["event"] == "started")
            profile = next((e for e in ladder[0] if e["event"] == "profile"), {})
            l_rate = statistics.median(steady_tokens_per_s(ev, a.skip) for ev in ladder)
            l_curve = [e["train_loss"] for e in ladder[0] if e["event"] == "metrics"]
            l_val = next(e for e in ladder[0] if e["event"] == "finished")["val_loss"]
            ckpt = next(e for e in ladder[0] if e["event"] == "checkpoint")["path"]
            # The final checkpoint as written by the last ladder run of this shape.
            ckpt = sorted(os.path.join(os.path.dirname(ckpt), d) for d in os.listdir(os.path.dirname(ckpt)))[-1]
            cross = run([sys.executable, os.path.join(HERE, "pytorch_ref.py"), "--config", cfg, "--check-checkpoint", ckpt])
            fpt = 3 * started["accounting"]["fwd_flops_per_token_exact"]
            row = {
                "shape": shape, "n": started["accounting"]["n"], "n_total": started["accounting"]["n_total"],
                "device": started["device"], "ladder_tokens_per_s": l_rate, "ladder_val_loss": l_val,
                "ladder_captured": profile.get("captured", False),
                "pytorch_val_loss_of_ladder_weights": cross[-1]["val_loss"],
            }
            if a.gns_cost:
                g_rate = statistics.median(steady_tokens_per_s(ev, a.skip) for ev in nogns)
                row["ladder_no_gns_tokens_per_s"] = g_rate
                row["gns_cost"] = 1.0 - l_rate / g_rate
            for b in baselines:
                t_rate = statistics.median(steady_tokens_per_s(ev, a.skip) for ev in base[b])
                t_curve = [e["train_loss"] for e in base[b][0] if e["event"] == "metrics"]
                row[f"{b}_tokens_per_s"] = t_rate
                row[f"ratio_vs_{b}"] = l_rate / t_rate
                row[f"{b}_val_loss"] = next(e for e in base[b][0] if e["event"] == "finished")["val_loss"]
                row[f"max_train_loss_diff_vs_{b}"] = max(abs(x - y) for x, y in zip(l_curve, t_curve))
                if a.peak_tflops:
                    row[f"{b}_mfu"] = fpt * t_rate / (a.peak_tflops * 1e12)
            if a.peak_tflops:
                row["ladder_mfu"] = fpt * l_rate / (a.peak_tflops * 1e12)
            # The names the CPU benchmark always reported.
            if "ref" in baselines:
                row["pytorch_tokens_per_s"] = row["ref_tokens_per_s"]
                row["ratio"] = row["ratio_vs_ref"]
                row["pytorch_val_loss"] = row["ref_val_loss"]
                row["val_loss_diff"] = abs(l_val - row["ref_val_loss"])
                row["max_train_loss_diff"] = row["max_train_loss_diff_vs_ref"]
            rows.append(row)
            print(json.dumps(row), flush=True)

    print()
    hdr = f"{'shape':>7} {'N':>12} {'ladder tok/s':>13}"
    for b in baselines:
        hdr += f" {b + ' tok/s':>14} {'x ' + b:>10}"
    if a.gns_cost:
        hdr += f" {'GNS cost':>9}"
    if a.peak_tflops:
        hdr += f" {'MFU':>6}"
    hdr += f" {'graph':>6}"
    print(hdr)
    for r in rows:
        line = f"{r['shape']:>7} {r['n']:>12,} {r['ladder_tokens_per_s']:>13,.0f}"
        for b in baselines:
            line += f" {r[b + '_tokens_per_s']:>14,.0f} {r['ratio_vs_' + b]:>10.3f}"
        if a.gns_cost:
            line += f" {100 * r['gns_cost']:>8.1f}%"
        if a.peak_tflops:
            line += f" {r['ladder_mfu']:>6.3f}"
        line += f" {str(r['ladder_captured']):>6}"
        print(line)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
