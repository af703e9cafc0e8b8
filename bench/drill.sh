#!/usr/bin/env bash
# The drill benchmark of the drills issue: one drill with 1,000 accounts (10 instances each) and
# 10,000 GuardDuty EC2 findings over 24 simulated hours, each isolated by the shipped
# isolate-ec2-instance playbook, then every run released and the world compared with its
# pre-drill snapshot (simulator/benches/drill.rs). Prints figures; it is not a timed test.
#
# Figures and targets:
# - wall time of the whole drill (scenario load, 24 h of virtual timeline, release, report).
#   Target: < 10 s here.
# - peak RSS of the process (VmHWM). Target: < 500 MB.
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
