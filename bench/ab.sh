#!/usr/bin/env bash
# ab.sh - single-node PUT and GET of two kvnode binaries, alternating, in one run: the check that
# a change did not slow the hot paths (issue 10 asks it of the replication rewrite). Each round
# starts a fresh node of A, then of B, and drives it with wrk (one thread, 64 connections, unique
# keys, 16-byte values) for DUR seconds of PUT and then DUR seconds of GET on what the PUTs wrote.
#
#   OLD=/path/to/old/kvnode NEW=.build/release/kvnode ROUNDS=3 DUR=8 bash bench/ab.sh
#
# One line per run: "binary round put req/s get req/s cpu-µs/put cpu-µs/get".
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${OLD:?OLD=path of the kvnode to compare against}
NEW=${NEW:-.build/release/kvnode}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-8}
PORT=${PORT:-18600}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-ab.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "ab.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
echo "# $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); old $OLD; new $NEW" >&2

run() { # run LABEL BINARY ROUND
  rm -f "$tmp"/node.db*
  "$2" --id A --port "$PORT" --db "$tmp/node.db" --log-level warning >"$tmp/node.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
  local before after put get
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  put=$(wrk -t1 -c64 -d"${DUR}s" -s bench/wrk/put_unique.lua "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2}')
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local put_ticks=$((after - before))
  get=$(wrk -t1 -c64 -d"${DUR}s" -s bench/wrk/get_existing.lua "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2}')
  local get_ticks=$(($(awk '{print $14 + $15}' "/proc/$pid/stat") - after))
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  awk -v l="$1" -v r="$3" -v p="$put" -v g="$get" -v pt="$put_ticks" -v gt="$get_ticks" -v d="$DUR" \
    'BEGIN { printf "%s %d put %.0f get %.0f cpu-us/put %.1f cpu-us/get %.1f\n", l, r, p, g, pt * 10000 / (p * d), gt * 10000 / (g * d) }'
}

for round in $(seq 1 "$ROUNDS"); do
  run old "$OLD" "$round"
  run new "$NEW" "$round"
done
