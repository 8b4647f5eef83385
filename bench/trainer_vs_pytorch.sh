#!/usr/bin/env bash
# CPU benchmark: ladder-train against the PyTorch reference on this machine (byte-level Moby-Dick,
# 4 x 128, n_ctx 128, batch 64 x 128 tokens in micro-batches of 16, 60 steps, 2 alternating rounds).
# Extra arguments go to bench/trainer_vs_pytorch.py (e.g. --steps 100 --shapes 2x128,4x256).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh >&2
corpus=$(bash scripts/fetch-corpus.sh moby-dick)
cargo build --release -p ladder-trainer --quiet
data=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}/bench/moby-byte
[ -f "$data/meta.json" ] || ./target/release/ladder-train prepare --tokenizer byte --val-fraction 0.02 --out "$data" "$corpus/data.txt" >/dev/null
PYTHONPATH="$(readlink -f .libtorch)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
python3 bench/trainer_vs_pytorch.py --bin target/release/ladder-train --data "$data" --device cpu --threads "$(nproc)" "$@"
