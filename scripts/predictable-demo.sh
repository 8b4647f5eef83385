#!/usr/bin/env bash
# The sealed-target demo (issue 32; cli/demo/predictable.toml, designed in
# docs/predictable-demo.md before any target ran): six sizes with cooldowns at eight D on the
# 18 Gutenberg books, and a sealed 4x128 target 0.52 decades of compute beyond them, trained
# through an embedded coordinator and worker on the CPU. The coordinator locks every law's
# prediction of the target once the fitted runs end; at the end it prints the fits and
# `ladder predict`'s scores. State lives in ~/.local/share/ladder/local, beside the demo's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
corpus=$(bash scripts/fetch-corpus.sh gutenberg)
cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
exec ./target/release/ladder local cli/demo/predictable.toml --tokenizer byte --dataset "gutenberg-bytes=$corpus" "$@"
