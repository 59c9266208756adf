#!/usr/bin/env bash
# Measures a warren daemon's idle memory: one daemon with N peers (separate
# daemons on test-profile repos over 127.0.0.1), after a settling time.
# Usage: bench/footprint.sh [peers=3] [settle-seconds=30]
set -euo pipefail
peers=${1:-3}
settle=${2:-30}
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/warren-fp.XXXX)
trap 'pkill -f "warren --repo $work" 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
go build -o "$work/warren" ./cmd/warren
w() { "$work/warren" --repo "$work/r$1" "${@:2}"; }
for i in $(seq 0 "$peers"); do
  w "$i" init --profile test >/dev/null
  w "$i" daemon >"$work/log$i" 2>&1 &
done
for i in $(seq 0 "$peers"); do until w "$i" id >/dev/null 2>&1; do sleep 0.1; done; done
addr=$(w 0 id --json | python3 -c 'import json,sys; print([a for a in json.load(sys.stdin)["addrs"] if "/tcp/" in a][0])')
for i in $(seq 1 "$peers"); do w "$i" connect "$addr" >/dev/null; done
sleep "$settle"
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$work/r0/api.json")
npeers=$(w 0 peers --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
echo "peers=$npeers idle_rss_kib=$rss peak_rss_kib=$hwm settle_s=$settle"
