#!/usr/bin/env bash
# The browser test of the live web page: installs Debian's chromium (apt) and a pinned
# playwright-core (npm, into the cache, not the repo) when missing, runs the tick and colour unit
# checks, then web/test/page.mjs against a real `ladder local --serve` sweep, then the first paint
# of a 1,000-job sweep's page.
# Env: LADDER_BIN (folder of the built ladder and ladder-train; default target/debug),
# LADDER_CACHE (default ~/.cache/ladder), OUT (screenshot folder; default ./browser-results).
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_CORE=1.65.1
NODE_DIR="${LADDER_CACHE:-$HOME/.cache/ladder}/node"
export LADDER_BIN="${LADDER_BIN:-target/debug}"

command -v node >/dev/null || { echo "browser-test: node (>= 20) is required" >&2; exit 1; }
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || { echo "browser-test: node >= 20 is required (found $(node --version))" >&2; exit 1; }
for b in ladder ladder-train; do
  [ -x "$LADDER_BIN/$b" ] || { echo "browser-test: $LADDER_BIN/$b not found: build first (cargo build --bins)" >&2; exit 1; }
done

if ! command -v chromium >/dev/null; then
  echo "browser-test: installing chromium with apt-get" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

have=$(node -p "try { require('$NODE_DIR/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$have" != "$PLAYWRIGHT_CORE" ]; then
  echo "browser-test: installing playwright-core@$PLAYWRIGHT_CORE into $NODE_DIR" >&2
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund "playwright-core@$PLAYWRIGHT_CORE"
fi

node web/test/units.mjs
LADDER_NODE_DIR="$NODE_DIR" CHROMIUM="$(command -v chromium)" node web/test/page.mjs
# The page of a sweep of 1,000 jobs (200 points each, from the real-size bench's simulated
# workers against the built coordinator): prints its first paint and when its curves are drawn,
# and fails when they take over LADDER_PAINT_LIMIT_MS. The target is 2 s; the debug build on 2
# busy cores drew them in 4.5 s (2026-12-07), so the default limit, 10 s, guards against the
# like of the 15 s a 1,000 × 200,000 aligned table took before.
LADDER_BENCH_JOBS=1000 LADDER_BENCH_POINTS=200 LADDER_BENCH_CHECKPOINTS=0 LADDER_BENCH_WORKERS=20 \
  LADDER_BENCH_PAINT_LIMIT_MS="${LADDER_PAINT_LIMIT_MS:-10000}" LADDER_NODE_DIR="$NODE_DIR" \
  cargo test -q -p ladder-coordinator --bench real_size
