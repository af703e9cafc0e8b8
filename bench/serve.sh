#!/usr/bin/env bash
# The server benchmarks of the issue: a load generator (benches/serve.rs) against the real
# `cordon serve --cloud sim` on loopback HTTP. Every figure is printed with a baseline measured in
# the same run, round by round (the machines are shared and noisy). About 1-2 minutes once built.
#
#   bench/serve.sh              # all three
#   bench/serve.sh latency      # one of: latency nomatch durable
#
# Figures and targets:
# - latency: event received -> the run's first containment call, p50 and p99 from the server's
#            histogram cordon_time_to_first_containment_seconds, at a steady open-loop 500
#            events/s. Target: p99 <= 5 ms. Beside it, the same load against a bare axum handler
#            and bare sled insert + flush latencies on the same disk.
# - nomatch: events that match no playbook, 32 concurrent senders, vs a bare axum handler
#            answering 202 (same load generator, same run). Target: >= 0.5x its rate.
# - durable: matching events, each run durable before its 202, 32 concurrent senders, vs a bare
#            sled loop (insert a run record's size, flush) on the same disk. Target: >= 1x.
# Settings: SERVE_BENCH_SECONDS (per phase, 5), SERVE_BENCH_ROUNDS (3), SERVE_BENCH_RATE (500),
# SERVE_BENCH_CONCURRENCY (32). SERVE_BENCH_LOG sets the servers' RUST_LOG (e.g.
# "info,cordon_engine::journal::sled_store=trace" logs every journal group commit: its writes and
# microseconds) and SERVE_BENCH_KEEP=1 keeps each server's directory, log included.
#
# TMPDIR=/dev/shm puts every journal, world and bare sled database on tmpfs instead of the disk
# (a diagnostic: it takes the disk out of both sides).
#
# Build cost: the bench profile (release, no debuginfo) builds the cordon binary, which links the
# AWS SDK. Measured on this 2-core machine, a cold `cargo bench --workspace --bench serve
# --no-run` took 50m45s wall (40 min CPU, 7.7 GB peak RSS; another helper was building the SDK at
# the same time), aws-sdk-ec2 at opt-level 3 most of it: too long for a two-minute benchmark. So
# this script builds the AWS SDK crates at opt-level 0 (the --config flags below): on --cloud sim
# the SDK is linked but never called, and everything measured (engine, server, simulator, axum,
# hyper, tokio, sled, serde, reqwest) keeps the bench profile's opt-level 3. Cold, that took
# 10m27s wall (19.5 min CPU, 6.9 GB peak); after a change in src/, about a minute. Without the
# flags (plain `cargo bench --workspace --bench serve`) the SDK is built at opt-level 3 as well,
# for nothing: it is on no measured path.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}

sdk_o0=()
for crate in ec2 iam ssm organizations sts eventbridge autoscaling elasticloadbalancingv2; do
    sdk_o0+=(--config "profile.bench.package.aws-sdk-$crate.opt-level=0")
done
# Build first, so build output does not interleave with the figures. --workspace: building the
# root package alone unifies features differently and rebuilds the whole AWS SDK.
cargo bench "${sdk_o0[@]}" --workspace --bench serve --no-run
cargo bench "${sdk_o0[@]}" --workspace --bench serve -- "$which"
