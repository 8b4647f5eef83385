#!/usr/bin/env bash
# The GPU benchmarks of issue 11, for a machine with one NVIDIA GPU, PyTorch 2.11 (cu130) in its
# Python and no network. Build here first (bench/gpu-prepare.sh), carry .device-bin, then run:
#   bash bench/gpu.sh trainer   # ladder-train vs PyTorch eager and torch.compile, 4x256 .. 12x768
#   bash bench/gpu.sh sweep     # a 7-size sweep one job at a time vs packed; 4 seeds fused vs not
#   bash bench/gpu.sh tests     # the CUDA tests (graph = eager bit for bit, fused = separate)
# Results go to $OUT (or ./gpu-results) as JSON beside the printed tables.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-trainer}
bin=.device-bin
out=${OUT:-gpu-results}
mkdir -p "$out"
torch_dir=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
site=$(dirname "$torch_dir")
cudalib=""
for d in "$site"/nvidia/cu*/lib; do [ -d "$d" ] && cudalib=$d; done
export LD_LIBRARY_PATH="$torch_dir/lib${cudalib:+:$cudalib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$bin/ladder-train" devices | tee "$out/devices.json"
peak=${PEAK_TFLOPS:-989}   # H100/H200 SXM dense bf16
data="$bin/data/bench-gpt2"
case "$what" in
  trainer)
    python3 bench/trainer_vs_pytorch.py --bin "$bin/ladder-train" --data "$data" --device cuda \
      --shapes "${SHAPES:-4x256,6x384,8x512,12x768}" --n-ctx 1024 --d-head 64 --batch-seqs "${BATCH_SEQS:-32}" \
      --micro "${MICRO:-8}" --steps "${STEPS:-40}" --skip 12 --rounds 1 --baselines eager,compile --gns-cost \
      --lr 1e-3 --peak-tflops "$peak" --out "$out/trainer.json" ;;
  sweep)
    for spec in sweep7 seeds4; do
      for mode in sequential packed fused; do
        [ "$spec" = sweep7 ] && [ "$mode" = fused ] && continue
        [ "$spec" = seeds4 ] && [ "$mode" = packed ] && continue
        case "$mode" in
          sequential) slots=cuda:0; fuse=1 ;;
          packed) slots=cuda:0,cuda:0,cuda:0,cuda:0,cuda:0,cuda:0,cuda:0; fuse=1 ;;
          fused) slots=cuda:0,cuda:0; fuse=4 ;;
        esac
        state=$(mktemp -d)
        start=$(date +%s.%N)
        "$bin/ladder" --output json local "bench/gpu/$spec.toml" --data-dir "$state" --trainer "$bin/ladder-train" \
          --dataset "bench-gpt2=$data" --slots "$slots" --fuse "$fuse" > "$out/$spec-$mode.json" 2> "$out/$spec-$mode.log"
        end=$(date +%s.%N)
        grep "sweep ended" "$out/$spec-$mode.log" || true
        echo "{\"spec\": \"$spec\", \"mode\": \"$mode\", \"wall_s\": $(echo "$end - $start" | bc)}" | tee -a "$out/makespans.jsonl"
        rm -rf "$state"
      done
    done ;;
  tests)
    # The CUDA tests are #[ignore]d where CI has no GPU: here they run, and fail without one.
    for t in "$bin"/tests/*; do "$t" --include-ignored --nocapture --test-threads 1 2>&1 | tail -20; done ;;
  *) echo "usage: $0 trainer|sweep|tests" >&2; exit 2 ;;
esac
