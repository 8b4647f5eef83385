#!/usr/bin/env bash
# The test command: installs libtorch if needed, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-libtorch.sh
cargo test --workspace --all-targets "$@"
