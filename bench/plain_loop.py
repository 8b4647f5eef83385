"""The script a researcher would write instead of ladder: one Python process that trains each model
size of a sweep in turn with a plain PyTorch loop (torch.optim.AdamW, clip_grad_norm_, gradient
accumulation, an evaluation every few steps), on the same token files, windows, init, learning-rate
schedule and step count as ladder's jobs. No gradient-noise statistics, no checkpoints, no events.

  python3 bench/plain_loop.py --data DIR --shapes 1x48,2x64 --n-ctx 128 --batch-tokens 4096 \
      --micro 16 --steps 535 --out runs.csv

Prints one JSON line per run and writes a CSV with the columns `ladder fit --csv` reads (N, loss).
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_ref import GPT, SplitMix64, lr_at, read_tokens  # noqa: E402  (the same model and sampler)


def n_non_embedding(s):
    d, f, L = s["d_model"], s["d_ff"], s["n_layer"]
    # Per block: attention 4d² + 4d biases... counted exactly as ladder does: every parameter but wte
    # (positions are rotary and have none).
    per_block = (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    return L * per_block + 2 * d


def train_one(a, s, train, val, device):
    n_ctx = s["n_ctx"]
    batch_seqs = a.batch_tokens // n_ctx
    k = batch_seqs // a.micro
    torch.manual_seed(a.seed)
    model = GPT(s)
    torch.manual_seed(a.seed)
    model.fan_in_init()
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    span = len(val) - n_ctx - 1
    n_eval = min(a.eval_windows, span + 1)
    starts = [0] if n_eval == 1 else [i * span // (n_eval - 1) for i in range(n_eval)]

    @torch.no_grad()
    def evaluate():
        total = 0.0
        for i in range(0, len(starts), a.micro):
            g = starts[i:i + a.micro]
            x = torch.stack([val[t:t + n_ctx] for t in g]).to(device)
            y = torch.stack([val[t + 1:t + n_ctx + 1] for t in g]).to(device)
            total += model.loss(x, y).item() * len(g)
        return total / len(starts)

    rng = SplitMix64(a.seed ^ 0x6C61646465720001)
    n_starts = len(train) - n_ctx
    best = math.inf
    t0 = time.perf_counter()
    for step in range(a.steps):
        lr = lr_at(step, a.lr, a.warmup, a.steps, "cosine", 0.1)
        for g in opt.param_groups:
            g["lr"] = lr
        for _ in range(k):
            idx = [rng.below(n_starts) for _ in range(a.micro)]
            x = torch.stack([train[t:t + n_ctx] for t in idx]).to(device)
            y = torch.stack([train[t + 1:t + n_ctx + 1] for t in idx]).to(device)
            (model.loss(x, y) / k).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            best = min(best, evaluate())
    return best, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--shapes", required=True, help="comma list of LAYERSxD_MODEL")
    ap.add_argument("--d-head", type=int, default=16)
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--micro", type=int, default=16, help="sequences per micro-batch")
    ap.add_argument("--steps", type=int, default=535)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="CSV of N and best validation loss per size")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    train = read_tokens(os.path.join(a.data, "train.bin"))
    val = read_tokens(os.path.join(a.data, "val.bin"))
    rows = []
    wall = time.perf_counter()
    for shape in a.shapes.split(","):
        n_layer, d_model = (int(x) for x in shape.split("x"))
        s = dict(n_layer=n_layer, d_model=d_model, n_heads=d_model // min(a.d_head, d_model), d_ff=4 * d_model,
                 n_ctx=a.n_ctx, vocab=meta["vocab_size"])
        best, secs = train_one(a, s, train, val, device)
        row = {"shape": shape, "N": n_non_embedding(s), "loss": best, "seconds": secs}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"total_seconds": time.perf_counter() - wall, "threads": torch.get_num_threads()}), flush=True)
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["N", "loss"])
            w.writeheader()
            for r in rows:
                w.writerow({"N": r["N"], "loss": r["loss"]})


if __name__ == "__main__":
    main()
