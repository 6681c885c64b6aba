#!/usr/bin/env bash
# million.sh - a node holding a million keys: start-up time, /status time, and memory.
#
#   bench/million.sh                  # ROWS=1000000 keys of 100 random bytes
#   BIN=/some/dir bench/million.sh    # use kvnode and kv from BIN instead of building them
#   ENVS="MALLOC_ARENA_MAX=2" bench/million.sh   # environment for the node (memory experiments)
#
# Makes a node's file quickly: kvnode creates it, then sqlite3 writes ROWS rows in the node's
# schema (keys bench/0 … bench/ROWS-1, the keys `kv bench` uses, as if the node had accepted
# them). Then, three times: start kvnode and time until GET /health answers 200 (polled every
# 10 ms), with its resident memory then; times one `kv status` (and, the third time, one
# GET /digest, which reads every row); stops it (SIGTERM). Last, one
# start under `kv bench mixed` (16 clients, 10 s, half reads, half writes over the million keys)
# and the node's peak RSS (VmHWM) after it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
PORT=${PORT:-18650}
DUR=${DUR:-10}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-million.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && { kill -9 "$pid"; wait "$pid"; } 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
  swift build -c release --product kvnode >&2
  swift build -c release --product kv >&2
  BIN=.build/release
fi
url=http://127.0.0.1:$PORT
start() { env ${ENVS:-} "$BIN/kvnode" --id A --port "$PORT" --db "$tmp/A.db" >>"$tmp/A.log" 2>&1 & pid=$!; }
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
healthy() { # seconds from now until /health answers 200, at most 60 s
  local begin
  begin=$(date +%s.%N)
  until curl -fs -o /dev/null "$url/health" 2>/dev/null; do
    awk -v b="$begin" -v n="$(date +%s.%N)" 'BEGIN { if (n - b > 60) exit 1 }' || { echo "million.sh: the node did not answer within 60 s" >&2; cat "$tmp/A.log" >&2; exit 1; }
    sleep 0.01
  done
  awk -v b="$begin" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - b }'
}
rss() { awk -v k="$1" '$1 == k":" {print int($2 / 1024)}' "/proc/$pid/status"; }

start
healthy >/dev/null
stop
loaded=$(date +%s.%N)
sqlite3 "$tmp/A.db" "
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS - 1)
  INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at)
  SELECT 'bench/' || i, randomblob(100), i + 1, 'A', i + 1, 0, '2026-11-26T00:00:00Z' FROM n;
  UPDATE node SET lamport = $ROWS, next_seq = $ROWS + 1;"
echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); rows: $ROWS; binaries: $BIN; node env: ${ENVS:-none}; file $(du -m "$tmp/A.db" | cut -f1) MiB, written in $(awk -v b="$loaded" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - b }') s" >&2

for run in 1 2 3; do
  start
  seconds=$(healthy)
  resident=$(rss VmRSS)
  begin=$(date +%s.%N)
  keys=$("$BIN/kv" --node "$url" status --json | sed -n 's/.*"keys":\([0-9]*\).*/\1/p')
  status=$(awk -v b="$begin" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - b }')
  [ "$keys" = "$ROWS" ] || { echo "million.sh: the node reports $keys keys, not $ROWS" >&2; exit 1; }
  echo "startup_to_healthy: $seconds s (run $run; $ROWS keys; RSS when healthy $resident MiB; then kv status took $status s and reported $keys keys)"
  if [ "$run" = 3 ]; then
    begin=$(date +%s.%N)
    curl -fs -o /dev/null "$url/digest"
    echo "digest: $(awk -v b="$begin" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - b }') s for GET /digest over $ROWS keys (what every anti-entropy round computes on each node, and serves to each peer); RSS after it $(rss VmRSS) MiB"
  fi
  stop
done

start
healthy >/dev/null
"$BIN/kv" --node "$url" bench mixed --clients 16 --duration "$DUR" --keys "$ROWS" --value-size 100 | sed 's/^/# bench: /' >&2
echo "rss_under_load: peak $(rss VmHWM) MiB, now $(rss VmRSS) MiB (after kv bench mixed, 16 clients, $DUR s, 50 % reads over $ROWS keys of 100 bytes)"
stop
