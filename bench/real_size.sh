#!/usr/bin/env bash
# The real-size benchmark (issue 31): one coordinator process holding a sweep of real size from
# 50 simulated workers on loopback: 500 jobs × 40,000 points (20M), ten 4 MiB checkpoints a job
# (20 GiB uploaded), log lines with every report, a browser tab on the sweep's page and the live
# fits running. Prints peak RSS and RSS at 10/50/100% of the points, Heartbeat and ReportEvents
# p50/p99, the final refit's time, the store on disk against what retention keeps, and the page's
# first paint in Chromium (when `scripts/browser-test.sh` has installed it). About 15 min on 2 cores.
# LADDER_BENCH_JOBS, _POINTS, _CHECKPOINTS, _CHECKPOINT_MIB, _WORKERS set the size, LADDER_BENCH_RATE
# the points per second of all workers together (default 40,000; 0: as fast as it takes them).
# Before/after: LADDER_BENCH_OLD=path/to/an/older/ladder-coordinator runs the same sweep on it
# first, under an address-space limit of LADDER_BENCH_OLD_LIMIT (default 12G) so that a
# coordinator whose memory grows with every point dies instead of the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LADDER_BENCH_OLD:-}" ]; then
  wrap=$(mktemp)
  printf '#!/bin/sh\nexec prlimit --as=%s -- %q "$@"\n' "${LADDER_BENCH_OLD_LIMIT:-12G}" "$(realpath "$LADDER_BENCH_OLD")" >"$wrap"
  chmod +x "$wrap"
  echo "== before: $LADDER_BENCH_OLD"
  LADDER_BENCH_COORDINATOR="$wrap" LADDER_BENCH_OLD_FORMAT=1 cargo bench -p ladder-coordinator --bench real_size || true
  rm -f "$wrap"
  echo "== after: this tree"
fi
cargo bench -p ladder-coordinator --bench real_size
