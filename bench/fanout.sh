#!/usr/bin/env bash
# Fan-out benchmark (AWS connectors): revoke one role's sessions in every account of an
# organization of N member accounts (default 200) in moto, through the real `cordon` binary.
# Prints the wall time, the AWS calls cordon made (from CORDON_AWS_CALL_LOG) by API, and the
# ratios against (a) the minimum the work needs: ListAccounts pages, one AssumeRole per account and
# one PutRolePolicy per account; (b) that minimum plus the reads cordon is required to make
# (the pre-state for release and the read-back proof: one GetRolePolicy each per account);
# and the wall time against moto's own cost per call measured in the same run.
#
#   bash bench/fanout.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}

source tests/install-moto.sh
cargo build --quiet --bin cordon

work=$(mktemp -d)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/moto-api/data.json" > /dev/null && break; sleep 0.1; done

echo "setting up $N member accounts in moto..."
floor=$(.venv/bin/python bench/fanout_setup.py "http://127.0.0.1:$port" "$N" "$work/event.json")

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export CORDON_AWS_CALL_LOG="$work/calls.log"
start=$(date +%s.%N)
set +e
./target/debug/cordon --journal "$work/journal" --playbooks playbooks run --cloud aws --event "$work/event.json" > "$work/run.out" 2>&1
code=$?
set -e
end=$(date +%s.%N)

.venv/bin/python - "$work/calls.log" "$N" "$start" "$end" "$floor" "$code" "$work/run.out" <<'PY'
import collections, json, sys
log, n, start, end, floor, code, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
calls = [l.split()[0] for l in open(log) if l.strip()]
by = collections.Counter(calls)
accounts = n + 1  # the members and the management account: `accounts: all`
pages = max(1, by.get("organizations:ListAccounts", 0))  # ListAccounts is paginated
minimum = pages + accounts + accounts      # ListAccounts pages, AssumeRole and PutRolePolicy per account
with_reads = minimum + 2 * accounts        # + pre-state and read-back GetRolePolicy per account
wall = end - start
floor_s = len(calls) * floor["moto_ms_per_call"] / 1000
print(f"run exit code {code}; accounts {accounts}")
for api, c in sorted(by.items()):
    print(f"  {api:<34} {c:>6}")
print(f"AWS calls made                     {len(calls):>6}")
print(f"minimum (list, assume, write)      {minimum:>6}   ratio {len(calls)/minimum:.2f}x (target <= 1.1x)")
print(f"minimum + required reads           {with_reads:>6}   ratio {len(calls)/with_reads:.2f}x")
print(f"wall time {wall:.2f} s; moto alone for these calls, sequentially: {floor_s:.2f} s ({floor['moto_ms_per_call']:.2f} ms/call); ratio {wall/floor_s:.2f}x")
if code != 0:
    print(open(out).read()[-2000:])
PY
