#!/usr/bin/env bash
# The test command: installs libtorch if needed, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
# GPU tests print why they skip where no GPU is present.
cargo test -p ladder-trainer --test cuda -- --nocapture
cargo test --workspace --all-targets "$@"
