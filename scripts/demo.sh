#!/usr/bin/env bash
# The main job: `ladder local` with no spec runs the built-in demo (cli/demo/demo.toml) end to
# end. It fetches Moby-Dick with scripts/fetch-corpus.sh, tokenizes it byte-level, trains one
# constant-LR trunk per size (eight sizes, 2.7 decades of N) on the CPU through an embedded
# coordinator and worker, forks cooldown and batch-window branches from the trunks' checkpoints,
# prints the fitted laws and the critical batch sizes, and writes the plots. State lives in ~/.local/share/ladder/local (delete it to start
# over; a second run reuses the finished sweep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
exec ./target/release/ladder local "$@"
