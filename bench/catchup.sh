#!/usr/bin/env bash
# catchup.sh - how fast a node catches up a large feed, and in how much memory.
#
#   bench/catchup.sh            # ROWS=200000 rows of 100 random bytes
#
# A release node A gets ROWS rows written straight into its file (sqlite3, as if A had accepted
# them), then B and C start empty with A as a peer and catch up. Prints the time until C holds
# every key, C's own log line about it, and C's peak resident memory (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
BASE=${BASE:-18600}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-catchup.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

swift build -c release --product kvnode >&2
swift build -c release --product kv >&2
kv=.build/release/kv
url() { echo "http://127.0.0.1:$((BASE + $1))"; }
names=(A B C)
start() { # start INDEX
  local i=$1 peers=() j
  for j in 0 1 2; do [ "$j" = "$i" ] || peers+=(--peer "${names[$j]}=$(url "$j")"); done
  .build/release/kvnode --id "${names[$i]}" --port "$((BASE + i))" --db "$tmp/${names[$i]}.db" "${peers[@]}" \
    >>"$tmp/${names[$i]}.log" 2>&1 &
  pids[$i]=$!
  for _ in $(seq 1 100); do "$kv" --node "$(url "$i")" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "catchup.sh: node ${names[$i]} did not start" >&2; cat "$tmp/${names[$i]}.log" >&2; exit 1
}

start 0
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
sqlite3 "$tmp/A.db" "
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
  INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at)
  SELECT printf('bulk/%07d', i), randomblob(100), i, 'A', i, 0, '2026-11-26T00:00:00Z' FROM n;
  UPDATE node SET lamport = $ROWS, next_seq = $ROWS + 1;"
start 0
echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); rows: $ROWS" >&2
begin=$(date +%s.%N)
start 1
start 2
until "$kv" --node "$(url 2)" status --json | grep -q "\"keys\":$ROWS[,}]"; do
  awk -v b="$begin" -v n="$(date +%s.%N)" 'BEGIN { if (n - b > 600) exit 1 }' || { echo "catchup.sh: C did not catch up within 600 s" >&2; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
peak=$(awk '/VmHWM/ {print $2}' "/proc/${pids[2]}/status")
seconds=$(awk -v b="$begin" -v e="$end" 'BEGIN { printf "%.2f", e - b }')
rate=$(awk -v s="$seconds" -v r="$ROWS" 'BEGIN { printf "%d", r / s }')
echo "catchup_rows_per_s: $rate rows/s ($ROWS rows of 100 bytes to C in $seconds s from start of B and C; C's peak RSS $((peak / 1024)) MiB)"
grep -h "caught up" "$tmp/C.log" | sed 's/^/# C: /' >&2
