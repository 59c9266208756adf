#!/usr/bin/env bash
# The whole test suite: every package under the race detector, the hostile-peer
# suite without it (its memory and latency bounds are for a normal build), and
# a brief run of each fuzz target. CI (.ci/run) runs exactly this plus go vet.
set -euo pipefail
cd "$(dirname "$0")"
# The e2e package runs after the others, not beside them: its hole punches
# through simulated NATs time their SYNs to a sub-millisecond relayed RTT.
# Beside another package's race-detector tests, TestPublicNetworkAcrossTwoNATs
# missed its TCP hole punch once in about seven suite runs; alone it passed
# 6 of 6.
go test -race -count=1 -timeout 40m $(go list ./... | grep -v '/e2e$')
go test -race -count=1 -timeout 40m ./e2e
go test -count=1 -timeout 15m -run '^TestHostile' ./e2e
# Each fuzz target runs a count of inputs, about 10 s here, not a duration:
# Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
# failure ("context deadline exceeded", no crasher; golang/go#75804, fixed in
# Go 1.27). FUZZTIME (e.g. 60s or 1000000x) overrides every count.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime="${FUZZTIME:-$3}" -fuzzminimizetime=100x "$1"; }
fuzz ./msg FuzzDecode 15000x
fuzz ./config FuzzConfig 60000x
fuzz ./tunnel FuzzLoadState 12000x
fuzz ./api FuzzDecodeRequest 10000x
fuzz ./client FuzzParseMessageLine 100000x
