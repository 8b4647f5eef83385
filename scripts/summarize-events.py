"""Prints a human summary of a ladder-train event stream (JSON lines on stdin)."""
import json
import math
import sys

failed = False
for line in sys.stdin:
    e = json.loads(line)
    kind = e["event"]
    if kind == "started":
        a = e["accounting"]
        print(f"N = {a['n']:,} (12·L·d² = {a['n_kaplan']:,}), N_total = {a['n_total']:,}, "
              f"{e['total_steps']} steps of {e['batch_tokens']:,} tokens on {e['device']}")
    elif kind == "metrics" and e["val_loss"] is not None:
        bs = e["b_simple"]
        bs = "n/a" if bs is None else f"{bs:,.0f}"
        print(f"step {e['step']:5d}  tokens {e['tokens']:>11,}  train {e['train_loss']:.3f}  "
              f"val {e['val_loss']:.3f} nats ({e['val_loss'] / math.log(2):.3f} bits/token)  "
              f"B_simple {bs}  {e['tokens_per_s']:,.0f} tok/s")
    elif kind == "finished":
        print(f"finished after {e['step']} steps ({e['reason']}), final val loss {e['val_loss']:.4f} nats")
    elif kind == "failed":
        print(f"FAILED ({e['kind']}): {e['message']}")
        failed = True
sys.exit(1 if failed else 0)
