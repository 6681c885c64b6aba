#!/usr/bin/env bash
# pragmas.sh - chooses SQLite settings by measurement: for each candidate (set on every
# connection of the node through $KVNODE_SQLITE_PRAGMAS), a fresh release kvnode takes
# wrk -t1 -c64 PUTs of unique keys for DUR seconds, then GETs over the keys it stored, and the
# line says req/s, the node's CPU time per request and its peak RSS. Candidates run in ROUNDS
# alternating rounds, so a slow minute of a shared box does not land on one candidate only.
#
#   bash bench/pragmas.sh
#   DUR=8 ROUNDS=3 CANDIDATES="|cache_size=-16000|mmap_size=268435456" bash bench/pragmas.sh
#
# The empty candidate is the node as shipped. Prints "pragmas[CANDIDATE] put|get: ..." lines.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-8}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18520}
BIN=${BIN:-.build/release/kvnode}
CANDIDATES=${CANDIDATES:-"|cache_size=-16000|cache_size=-64000|mmap_size=268435456|wal_autocheckpoint=10000|cache_size=-16000;wal_autocheckpoint=10000"}
command -v wrk >/dev/null || { echo "pragmas.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -n "${BIN_PREBUILT:-}" ] || swift build -c release --product kvnode >&2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-pragmas.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
echo "# pragmas.sh at $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); DUR=$DUR ROUNDS=$ROUNDS" >&2

node_cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
load() { # load LABEL SCRIPT KEYS -> one line
  local c0 c1 out n r p99
  c0=$(node_cpu)
  out=$(KEY_PREFIX=k KEYS=$3 wrk -t1 -c64 -d"${DUR}s" --latency -s "bench/wrk/$2" "http://127.0.0.1:$PORT" 2>&1)
  c1=$(node_cpu)
  n=$(awk '/requests in/ {print $1}' <<<"$out"); r=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$1: $r req/s (p99 $p99; node CPU $(( (c1 - c0) * 10000000 / (n > 0 ? n : 1) )) ns/request; peak RSS $(awk '/VmHWM/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status"))"
  LAST=$n
}

IFS='|' read -r -a candidates <<<"$CANDIDATES"
for round in $(seq 1 "$ROUNDS"); do
  for candidate in "${candidates[@]}"; do
    rm -f "$tmp"/node.db*
    KVNODE_SQLITE_PRAGMAS="$candidate" "$BIN" --id A --port "$PORT" --db "$tmp/node.db" --log-level warning >"$tmp/node.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null || { echo "pragmas.sh: kvnode refused '$candidate':" >&2; cat "$tmp/node.log" >&2; exit 1; }
    name="pragmas[${candidate:-as shipped}] round $round"
    load "$name put" put_unique.lua 0
    load "$name get" get_existing.lua $((LAST / 2))
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  done
done
