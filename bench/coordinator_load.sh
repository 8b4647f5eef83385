#!/usr/bin/env bash
# Coordinator load benchmark: simulated workers on loopback (100 and 1000), durable points/s and
# p50/p99 Acquire/Heartbeat latency, beside raw redb batched-insert throughput from the same run.
# LADDER_BENCH_SECS sets the seconds per load level (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p ladder-coordinator --bench load
