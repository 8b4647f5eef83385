"""PyTorch reference for ladder-train: the same architecture, data sampler, init order, AdamW,
clipping, gradient-noise bookkeeping and evaluation, driven by the same job.toml.

Writes JSON-lines events like ladder-train's (started, metrics, finished) to stdout.
  python3 bench/pytorch_ref.py --config job.toml [--device cuda] [--check-checkpoint DIR]
--check-checkpoint loads ladder-train's model.safetensors into this model and prints its
validation loss, proving the weights load in PyTorch and the forward passes agree.
"""
import argparse
import json
import math
import os
import sys
import time
import tomllib

import torch
import torch.nn.functional as F

M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return (self.next_u64() * n) >> 64


def rope_tables(t, d_head, device):
    # ladder-train's rotary tables (trainer/src/rope.rs), op for op: θ_i = 10000^(-2i/d_head),
    # the halves repeated, so the CPU values agree bit for bit.
    exponent = torch.arange(0, d_head, 2, dtype=torch.float32, device=device) / d_head
    inv_freq = torch.pow(10000.0, exponent).reciprocal()
    angles = torch.outer(torch.arange(t, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat((angles, angles), 1)
    return angles.cos(), angles.sin()


def rope_rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Block(torch.nn.Module):
    def __init__(self, d, d_ff, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1 = torch.nn.LayerNorm(d)
        self.attn = torch.nn.Module()
        self.attn.c_attn = torch.nn.Linear(d, 3 * d)
        self.attn.c_proj = torch.nn.Linear(d, d)
        self.ln_2 = torch.nn.LayerNorm(d)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc = torch.nn.Linear(d, d_ff)
        self.mlp.c_proj = torch.nn.Linear(d_ff, d)

    def forward(self, x, rope):
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        q, k = rope_rotate(q, *rope), rope_rotate(k, *rope)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.transformer = torch.nn.Module()
        self.transformer.wte = torch.nn.Embedding(s["vocab"], s["d_model"])
        self.transformer.h = torch.nn.ModuleList(
            Block(s["d_model"], s["d_ff"], s["n_heads"]) for _ in range(s["n_layer"]))
        self.transformer.ln_f = torch.nn.LayerNorm(s["d_model"])

    @torch.no_grad()
    def fan_in_init(self):
        # ladder-train's init (trainer/src/model.rs): std gain/sqrt(fan_in), residual projections
        # with gain 1/sqrt(2·n_layer), embeddings 1/sqrt(d_model). The draw order of its VarStore:
        # wte, then per block c_attn, attn.c_proj, c_fc, mlp.c_proj weights; so the same
        # seed gives the same initial weights on CPU.
        proj_gain = 1 / math.sqrt(2 * self.s["n_layer"])
        tr = self.transformer
        tr.wte.weight.copy_(torch.randn_like(tr.wte.weight) / math.sqrt(self.s["d_model"]))
        for blk in tr.h:
            for lin, gain in ((blk.attn.c_attn, 1.0), (blk.attn.c_proj, proj_gain),
                              (blk.mlp.c_fc, 1.0), (blk.mlp.c_proj, proj_gain)):
                lin.weight.copy_(torch.randn_like(lin.weight) * (gain / math.sqrt(lin.in_features)))
                lin.bias.zero_()

    def loss(self, idx, targets):
        t = idx.shape[1]
        x = self.transformer.wte(idx)
        rope = rope_tables(t, self.s["d_model"] // self.s["n_heads"], idx.device)
        for blk in self.transformer.h:
            x = blk(x, rope)
        logits = F.linear(self.transformer.ln_f(x), self.transformer.wte.weight)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def lr_at(step, peak, warmup, total, schedule, min_ratio):
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    lo = peak * min_ratio
    return lo + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - lo)


def load_safetensors(path):
    """Reads a safetensors file with nothing but the format's spec (8-byte header size, JSON, data)."""
    import struct
    dtypes = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16, "F16": torch.float16}
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[lo:hi]), dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def read_tokens(path):
    import array
    a = array.array("H")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return torch.tensor(a, dtype=torch.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--check-checkpoint", default=None)
    ap.add_argument("--mode", choices=["ref", "eager", "compile"], default="ref",
                    help="ref: ladder-train's exact steps, noise-scale bookkeeping included; eager: the plain fast "
                         "loop (fused AdamW on CUDA, clip_grad_norm_, no noise scale); compile: eager under torch.compile")
    args = ap.parse_args()
    cfg = tomllib.load(open(args.config, "rb"))
    m, tr, stop = cfg["model"], cfg["train"], cfg["stop"]
    ev = cfg.get("eval", {})
    data_dir = cfg["data"]["dir"]
    meta_path = os.path.join(data_dir, "meta.json")
    vocab = m.get("vocab") or json.load(open(meta_path))["vocab_size"]
    n_heads = m.get("n_heads") or m["d_model"] // m["d_head"]
    s = dict(n_layer=m["n_layer"], d_model=m["d_model"], n_heads=n_heads,
             d_ff=m.get("d_ff", 4 * m["d_model"]), n_ctx=m["n_ctx"], vocab=vocab)
    device = torch.device(args.device or ("cuda" if cfg.get("device", "auto") in ("auto", "cuda") and torch.cuda.is_available() else "cpu"))
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    train = read_tokens(os.path.join(data_dir, "train.bin"))
    if cfg["data"].get("max_tokens"):
        train = train[: int(cfg["data"]["max_tokens"])]
    val = read_tokens(os.path.join(data_dir, "val.bin"))
    n_ctx = s["n_ctx"]
    batch_tokens = int(tr["batch_tokens"])
    batch_seqs = batch_tokens // n_ctx
    micro = int(tr.get("micro_batch", batch_seqs))
    k = batch_seqs // micro
    total = int(stop["steps"]) if "steps" in stop else math.ceil(int(stop["tokens"]) / batch_tokens)
    if "steps" in stop and "tokens" in stop:
        total = min(int(stop["steps"]), math.ceil(int(stop["tokens"]) / batch_tokens))
    peak = float(tr["lr"])
    seed = int(tr.get("seed", 0))

    model = GPT(s)
    torch.manual_seed(seed)  # after construction: nn.Linear/Embedding draw from the RNG when built
    model.fan_in_init()
    model.to(device)
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tr.get("weight_decay", 0.1)}, {"params": no_decay, "weight_decay": 0.0}],
        lr=peak, betas=(tr.get("beta1", 0.9), tr.get("beta2", 0.95)), eps=tr.get("eps", 1e-8))
    clip = tr.get("grad_clip", 1.0)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    span = len(val) - n_ctx - 1
    n_eval = min(int(ev.get("windows", 64)), span + 1)
    eval_starts = [0] if n_eval == 1 else [i * span // (n_eval - 1) for i in range(n_eval)]

    @torch.no_grad()
    def evaluate():
        parts = []
        for i in range(0, len(eval_starts), micro):
            group = eval_starts[i:i + micro]
            x = torch.stack([val[st:st + n_ctx] for st in group]).to(device)
            y = torch.stack([val[st + 1:st + n_ctx + 1] for st in group]).to(device)
            with autocast():
                parts.append(model.loss(x, y).double() * len(group))
        return torch.stack(parts).sum().item() / len(eval_starts)

    if args.check_checkpoint:
        state = load_safetensors(os.path.join(args.check_checkpoint, "model.safetensors"))
        model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=True)
        print(json.dumps({"event": "checkpoint_val_loss", "val_loss": evaluate()}))
        return

    rng = SplitMix64(seed ^ 0x6C61646465720001)
    starts_n = len(train) - n_ctx
    acc = [torch.zeros_like(p) for p in params]
    print(json.dumps({"event": "started", "device": str(device), "total_steps": total, "batch_tokens": batch_tokens,
                      "n_params": sum(p.numel() for p in params)}), flush=True)
    val_loss = None
    if args.mode != "ref":
        return fast_loop(args, model, params, decay, no_decay, tr, ev, train, n_ctx, batch_tokens, micro, k, total, peak,
                         clip, device, cuda, rng, starts_n, evaluate, autocast)
    for step in range(total):
        t0 = time.perf_counter()
        lr = lr_at(step, peak, tr.get("warmup_steps", 0), total, tr.get("schedule", "cosine"), tr.get("min_lr_ratio", 0.1))
        for g in opt.param_groups:
            g["lr"] = lr
        losses, micro_sq = [], []
        for i in range(k):
            st = [rng.below(starts_n) for _ in range(micro)]
            x = torch.stack([train[a:a + n_ctx] for a in st]).to(device)
            y = torch.stack([train[a + 1:a + n_ctx + 1] for a in st]).to(device)
            with autocast():
                loss = model.loss(x, y)
            loss.backward()
            losses.append(loss.detach().double())
            with torch.no_grad():
                sq = []
                for p, a in zip(params, acc):
                    g = p.grad.reshape(-1)
                    sq.append(g.dot(g).double())
                    if i == 0:
                        a.copy_(p.grad)
                    else:
                        a.add_(p.grad)
                    p.grad.zero_()
                micro_sq.append(torch.stack(sq).sum())
        with torch.no_grad():
            small = torch.stack(micro_sq).mean()
            sq = []
            for a in acc:
                a.mul_(1.0 / k)
                f = a.reshape(-1)
                sq.append(f.dot(f).double())
            big = torch.stack(sq).sum()
            if clip > 0:
                coef = (clip / (big.sqrt() + 1e-6)).clamp(max=1.0)
                for a in acc:
                    a.mul_(coef.to(a.dtype))
            for p, a in zip(params, acc):
                p.grad = a
            opt.step()
            for p in params:
                p.grad = None
        stats = torch.stack([torch.stack(losses).mean(), small, big]).cpu().tolist()
        secs = time.perf_counter() - t0
        step += 1
        evaluated = step % int(ev.get("every", 100)) == 0 or step == total
        if evaluated:
            val_loss = evaluate()
        print(json.dumps({"event": "metrics", "step": step, "tokens": step * batch_tokens, "train_loss": stats[0],
                          "val_loss": val_loss if evaluated else None, "lr": lr, "grad_norm": math.sqrt(stats[2]),
                          "tokens_per_s": batch_tokens / secs}), flush=True)
    print(json.dumps({"event": "finished", "step": total, "val_loss": val_loss}), flush=True)


def fast_loop(args, model, params, decay, no_decay, tr, ev, train, n_ctx, batch_tokens, micro, k, total, peak, clip,
              device, cuda, rng, starts_n, evaluate, autocast):
    """The loop a practitioner writes for speed: fused AdamW (CUDA), gradients accumulated in .grad,
    clip_grad_norm_, one host sync per step; with --mode compile, the loss under torch.compile."""
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tr.get("weight_decay", 0.1)}, {"params": no_decay, "weight_decay": 0.0}],
        lr=peak, betas=(tr.get("beta1", 0.9), tr.get("beta2", 0.95)), eps=tr.get("eps", 1e-8), fused=cuda)
    loss_fn = torch.compile(model.loss) if args.mode == "compile" else model.loss
    val_loss = None
    for step in range(total):
        t0 = time.perf_counter()
        lr = lr_at(step, peak, tr.get("warmup_steps", 0), total, tr.get("schedule", "cosine"), tr.get("min_lr_ratio", 0.1))
        for g in opt.param_groups:
            g["lr"] = lr
        total_loss = torch.zeros((), device=device)
        for _ in range(k):
            st = [rng.below(starts_n) for _ in range(micro)]
            x = torch.stack([train[a:a + n_ctx] for a in st]).to(device, non_blocking=True)
            y = torch.stack([train[a + 1:a + n_ctx + 1] for a in st]).to(device, non_blocking=True)
            with autocast():
                loss = loss_fn(x, y)
            (loss / k).backward()
            total_loss += loss.detach()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_loss = (total_loss / k).item()
        secs = time.perf_counter() - t0
        step += 1
        evaluated = step % int(ev.get("every", 100)) == 0 or step == total
        if evaluated:
            val_loss = evaluate()
        print(json.dumps({"event": "metrics", "step": step, "tokens": step * batch_tokens, "train_loss": train_loss,
                          "val_loss": val_loss if evaluated else None, "lr": lr, "tokens_per_s": batch_tokens / secs}),
              flush=True)
    print(json.dumps({"event": "finished", "step": total, "val_loss": val_loss}), flush=True)


if __name__ == "__main__":
    main()
