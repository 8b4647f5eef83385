#!/usr/bin/env bash
# Sweep-level CPU benchmark: the same multi-size sweep through `ladder local` and through the plain
# PyTorch loop of bench/plain_loop.py (same token files, windows, init, schedule and steps), in
# alternating rounds on this machine. Reports the wall-time ratio and both L(N) fits.
# Environment: SHAPES (default 1x48,2x64,2x96,3x128,4x192: N from 28k to 1.8M), STEPS (535 steps
# of BATCH=4096 tokens), ROUNDS (1). A short version: STEPS=60.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh >&2
corpus=$(bash scripts/fetch-corpus.sh moby-dick)
cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
data=${LADDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ladder}/bench/moby-byte
[ -f "$data/meta.json" ] || ./target/release/ladder-train prepare --tokenizer byte --val-fraction 0.02 --out "$data" "$corpus/data.txt" >/dev/null
PYTHONPATH="$(readlink -f .libtorch)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec python3 bench/sweep_vs_pytorch.py --ladder target/release/ladder --trainer target/release/ladder-train \
  --data "$data" --shapes "${SHAPES:-1x48,2x64,2x96,3x128,4x192}" --steps "${STEPS:-535}" \
  --batch-tokens "${BATCH:-4096}" --rounds "${ROUNDS:-1}" "$@"
