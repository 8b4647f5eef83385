#!/usr/bin/env bash
# Coordinator load benchmark: the real coordinator process and 1000 simulated workers on loopback.
# Paced (1 Hz heartbeats, 10 points/s each): durable points/s, p50/p99 of Acquire, Heartbeat and
# ReportEvents, CPU and memory; saturated (reports back to back, 512 and 10 points each): the most
# durable points/s, as a fraction of raw redb batched inserts measured in the same run.
# LADDER_BENCH_SECS: seconds of the paced run (default 30; the saturated runs take at most 20);
# LADDER_BENCH_WORKERS: workers (default 1000); LADDER_BENCH_PACED_ONLY=1: no saturated runs;
# LADDER_BENCH_COORDINATOR: another coordinator binary to measure (before/after).
# First, the writer scenario (issue 19): 200 workers heartbeat at 1 Hz while a 10,000-job spec is
# submitted and 5,000 stale reports arrive at once: Heartbeat p50/p99 before and during the burst,
# and the coordinator's fsyncs during it (counted with strace --seccomp-bpf where installed).
# LADDER_BENCH_ONLY=writer runs that scenario alone.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p ladder-coordinator --bench load
