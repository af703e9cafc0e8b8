#!/usr/bin/env bash
# The engine's benchmarks, in release mode, with short criterion runs (the machines are shared:
# every target is a ratio against a baseline measured in the same run). About 4-6 minutes.
#
#   bench/run.sh            # all four
#   bench/run.sh ingest     # one of: pattern ingest journal memory
#   bench/run.sh serve [latency|nomatch|durable]   # the server benchmarks: bench/serve.sh
#
# Figures and targets (pattern, ingest: medians of per-round ratios, all variants measured in each
# round):
# - pattern: match one GuardDuty event against 1, 1,000 and 10,000 realistic patterns, vs a bare
#            serde_json parse. Targets: 10,000/parse <= 1x, 10,000/1,000 <= 1.5x.
# - ingest:  normalize + match one GuardDuty finding against 1 and 1,000 playbooks, vs a bare
#            serde_json parse. Targets: 1000/parse <= 3x, 1000/1 <= 1.5x.
# - journal: a 5-step run end to end, every transition flushed, vs bare sled insert + flush
#            pairs on the same disk. Target: run <= 2x bare.
# - memory:  RSS of one process holding 10,000 runs waiting for approval. Target < 200 MB.
# - serve:   `cordon serve` under load (see bench/serve.sh). Not part of `all`: it needs a release
#            build of the binary with the AWS SDK, which the engine's benches do not.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == serve ]]; then
    exec bench/serve.sh "${2:-all}"
fi

# Short criterion runs; override with e.g. CRITERION_ARGS="--measurement-time 10".
CRITERION_ARGS=${CRITERION_ARGS:---warm-up-time 1 --measurement-time 3}
which=${1:-all}

# Build everything first, so build output does not interleave with the figures.
cargo bench -p cordon-engine --bench pattern --bench ingest --bench journal --no-run
cargo build --profile bench -p cordon-engine --example waiting_runs

if [[ $which == all || $which == pattern ]]; then
    echo "== pattern =="
    # shellcheck disable=SC2086
    cargo bench -p cordon-engine --bench pattern -- $CRITERION_ARGS
fi
if [[ $which == all || $which == ingest ]]; then
    echo "== ingest =="
    # shellcheck disable=SC2086
    cargo bench -p cordon-engine --bench ingest -- $CRITERION_ARGS
fi
if [[ $which == all || $which == journal ]]; then
    echo "== journal =="
    # shellcheck disable=SC2086
    cargo bench -p cordon-engine --bench journal -- $CRITERION_ARGS
fi
if [[ $which == all || $which == memory ]]; then
    echo "== memory =="
    cargo run --profile bench -q -p cordon-engine --example waiting_runs -- "${WAITING_RUNS:-10000}"
fi
