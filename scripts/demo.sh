#!/usr/bin/env bash
# The main job, until `ladder local` lands: fetches Moby-Dick, tokenizes it, trains one
# byte-level Transformer on the CPU with ladder-train, and summarises the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
corpus=$(bash scripts/fetch-corpus.sh moby-dick)
cargo build --release -p ladder-trainer --quiet
home=${LADDER_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/ladder}
run="$home/demo"
mkdir -p "$run"
./target/release/ladder-train prepare --tokenizer byte --val-fraction 0.02 --out "$run/data" "$corpus/data.txt" >/dev/null
cat > "$run/job.toml" <<TOML
device = "auto"

[model]
n_layer = 4
d_model = 128
n_heads = 4
n_ctx = 128

[data]
dir = "$run/data"

[train]
batch_tokens = 8192
micro_batch = 16
lr = 3e-3
warmup_steps = 30
seed = 0

[stop]
steps = 300

[eval]
every = 50
windows = 128

[checkpoint]
every = 100
dir = "$run/checkpoints"
TOML
echo "training 4 x 128 byte-level model on Moby-Dick (300 steps of 8192 tokens); events in $run/events.jsonl"
set -o pipefail
./target/release/ladder-train train --config "$run/job.toml" | tee "$run/events.jsonl" | python3 scripts/summarize-events.py
