#!/usr/bin/env bash
# The whole test suite: every package under the race detector, the hostile-peer
# suite without it (its memory and latency bounds are for a normal build), and
# a brief run of each fuzz target. CI (.ci/run) runs exactly this plus go vet.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime=${FUZZTIME:-10s}
go test -race -count=1 -timeout 40m ./...
go test -count=1 -timeout 15m -run '^TestHostile' ./e2e
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime="$fuzztime" -fuzzminimizetime=100x "$1"; }
fuzz ./msg FuzzDecode
fuzz ./config FuzzConfig
fuzz ./tunnel FuzzLoadState
fuzz ./api FuzzDecodeRequest
fuzz ./client FuzzParseMessageLine
