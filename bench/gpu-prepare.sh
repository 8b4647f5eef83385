#!/usr/bin/env bash
# Builds what bench/gpu.sh runs into .device-bin (ignored by git): release binaries, the CUDA test
# binaries, and the GPT-2-tokenized Gutenberg corpus (no network on the GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh >&2
cargo build --release --quiet -p ladder-cli -p ladder-trainer --bins
mkdir -p .device-bin/tests .device-bin/data
cp target/release/ladder target/release/ladder-train .device-bin/
# The test binaries to run on the device (add names to this list).
tests=(cuda)
for t in "${tests[@]}"; do
  exe=$(cargo test --release -p ladder-trainer --test "$t" --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("executable") and m.get("target",{}).get("name")=="'"$t"'": print(m["executable"])')
  cp "$exe" ".device-bin/tests/$t"
done
if [ ! -f .device-bin/data/bench-gpt2/meta.json ]; then
  corpus=$(bash scripts/fetch-corpus.sh gutenberg)
  ./target/release/ladder-train prepare --tokenizer gpt2 --lossy-utf8 --out .device-bin/data/bench-gpt2 "$corpus"/*.txt >/dev/null
fi
du -sh .device-bin
