#!/usr/bin/env bash
# The test command: installs libtorch if needed, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
# Tests that need what CI has (root, network namespaces, Slurm, podman) fail instead of skipping
# under CI=true; the CUDA tests are #[ignore]d (bench/gpu.sh runs them on a GPU machine).
cargo build --workspace --bins
cargo test --workspace --all-targets "$@"
