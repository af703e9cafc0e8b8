#!/usr/bin/env bash
# The drill benchmark of the drills issue: one drill with 1,000 accounts (10 instances each) and
# 10,000 GuardDuty EC2 findings over 24 simulated hours, each isolated by the shipped
# isolate-ec2-instance playbook, then every run released and the world compared with its
# pre-drill snapshot, the report built and its Markdown written to a file, what `cordon drill`
# prints by default (simulator/benches/drill.rs). Prints figures; it is not a timed test.
#
# Figures and targets:
# - wall time of the whole drill (scenario load, 24 h of virtual timeline, release, report,
#   Markdown), with each phase's. Target: < 10 s here.
# - peak RSS of the process (VmHWM), and the peak by the end of each phase. Target: < 500 MB.
#   Measured on the 2-core machine the project builds on (2026-12-01): 5.4-5.6 s (5.0-5.4 s of
#   CPU) and 332-337 MB peak RSS. It was 9.4-10.5 s and 967-977 MB: the world copied five times
#   at the end of a drill, the runs loaded three times, every injected event's text held 10,000
#   times, each journaled run in a buffer up to twice its size. The wall time is the machine's:
#   with other builds running it reached 11.5 s for the same 5.4 s of CPU, hence the CPU figure.
# - mutating cloud calls per finding against the minimum an isolation needs (one snapshot, the
#   interface to the allow-all group and then to the isolation group, plus the two groups once
#   per VPC).
# Settings: DRILL_BENCH_ACCOUNTS (1000), DRILL_BENCH_FINDINGS (10000), DRILL_BENCH_HOURS (24).
#
# Only the engine and the simulator are built (release, the bench profile): no AWS SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --workspace --bench drill --no-run
exec cargo bench --workspace --bench drill
