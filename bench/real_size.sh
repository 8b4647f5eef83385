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
# first, killed by a watchdog once its RSS passes LADDER_BENCH_OLD_LIMIT_MIB (default 12288) so
# that a coordinator whose memory grows with every point dies instead of the machine (an
# address-space limit, prlimit --as, kills every process at start in some sandboxes).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${LADDER_BENCH_OLD:-}" ]; then
  wrap=$(mktemp)
  # The watchdog watches the wrapper's own pid, which exec hands to the coordinator.
  cat >"$wrap" <<EOF
#!/bin/sh
limit_kb=\$(( ${LADDER_BENCH_OLD_LIMIT_MIB:-12288} * 1024 ))
( while kill -0 \$\$ 2>/dev/null; do
    rss=\$(awk '/^VmRSS/ {print \$2}' /proc/\$\$/status 2>/dev/null)
    if [ "\${rss:-0}" -gt "\$limit_kb" ]; then echo "watchdog: RSS \$rss kB over the limit; killed" >&2; kill -9 \$\$; fi
    sleep 0.5
  done ) >/dev/null &
exec "$(realpath "$LADDER_BENCH_OLD")" "\$@"
EOF
  chmod +x "$wrap"
  echo "== before: $LADDER_BENCH_OLD"
  LADDER_BENCH_COORDINATOR="$wrap" LADDER_BENCH_OLD_FORMAT=1 cargo bench -p ladder-coordinator --bench real_size || true
  rm -f "$wrap"
  echo "== after: this tree"
fi
cargo bench -p ladder-coordinator --bench real_size
