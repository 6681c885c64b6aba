#!/usr/bin/env bash
# catchup.sh - how fast a node catches up a large feed, and in how much memory.
#
#   bench/catchup.sh                   # ROWS=200000 rows of 100 random bytes
#   ROWS=1000000 bench/catchup.sh      # the performance issue's million rows
#   BIN=/some/dir bench/catchup.sh     # use kvnode and kv from BIN instead of building them
#   ANCHOR=0 bench/catchup.sh          # skip the raw SQLite anchor
#
# A release node A gets ROWS rows written straight into its file (sqlite3, as if A had accepted
# them). Then:
#   1. B starts empty with A as its peer and catches up (one source);
#   2. C starts empty with A and B, which both hold every row, and catches up: the figure of
#      the issue ("catch-up after a restart", from a cluster in steady state).
# Each is timed from the node's start to its log line "catch-up finished", then its key count
# is checked once. Prints rows/s, the peak RSS (VmHWM) of the node that caught up, the rows its
# peers sent it, the CPU seconds each node used meanwhile (a figure the load of a shared box
# does not bend), and, unless ANCHOR=0, the raw SQLite insert rate in 10,000-row transactions
# measured right after (../shared/bench/peers.sh) and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
BASE=${BASE:-18600}
ANCHOR=${ANCHOR:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-catchup.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
  swift build -c release --product kvnode >&2
  swift build -c release --product kv >&2
  BIN=.build/release
fi
kv=$BIN/kv
url() { echo "http://127.0.0.1:$((BASE + $1))"; }
names=(A B C)
start() { # start INDEX PEER-INDEX...
  local i=$1 peers=() j
  shift
  for j in "$@"; do peers+=(--peer "${names[$j]}=$(url "$j")"); done
  "$BIN/kvnode" --id "${names[$i]}" --port "$((BASE + i))" --db "$tmp/${names[$i]}.db" "${peers[@]}" \
    >>"$tmp/${names[$i]}.log" 2>&1 &
  pids[$i]=$!
}
healthy() { # healthy INDEX: wait until /health answers
  for _ in $(seq 1 300); do curl -fs "$(url "$1")/health" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "catchup.sh: node ${names[$1]} did not start" >&2; cat "$tmp/${names[$1]}.log" >&2; exit 1
}
caught_up() { # caught_up INDEX BEGIN: wait for the log line, print seconds since BEGIN
  until grep -q "catch-up finished" "$tmp/${names[$1]}.log"; do
    awk -v b="$2" -v n="$(date +%s.%N)" 'BEGIN { if (n - b > 600) exit 1 }' || { echo "catchup.sh: ${names[$1]} did not catch up within 600 s" >&2; exit 1; }
    sleep 0.02
  done
  awk -v b="$2" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - b }'
}
keys() { "$kv" --node "$(url "$1")" status --json | sed -n 's/.*"keys":\([0-9]*\).*/\1/p'; }
received() { # rows the node's peers sent it (pushes and pulls), from its /status
  "$kv" --node "$(url "$1")" status --json | grep -o '"rows_received":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}
peak() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/${pids[$1]}/status"; }
cpu() { # CPU seconds (user + system) the node has used so far
  awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/${pids[$1]}/stat"
}

start 0 1 2
healthy 0
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
sqlite3 "$tmp/A.db" "
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
  INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at)
  SELECT printf('bulk/%07d', i), randomblob(100), i, 'A', i, 0, '2026-11-26T00:00:00Z' FROM n;
  UPDATE node SET lamport = $ROWS, next_seq = $ROWS + 1;"
start 0 1 2
healthy 0
echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); rows: $ROWS; binaries: $BIN" >&2

cpu_a=$(cpu 0)
begin=$(date +%s.%N)
start 1 0 2
seconds=$(caught_up 1 "$begin")
[ "$(keys 1)" = "$ROWS" ] || { echo "catchup.sh: B holds $(keys 1) keys, not $ROWS" >&2; exit 1; }
echo "catchup_one_source: $(awk -v s="$seconds" -v r="$ROWS" 'BEGIN { printf "%d", r / s }') rows/s ($ROWS rows of 100 bytes from A to an empty B in $seconds s from B's start; B's peak RSS $(peak 1) MiB, rows received $(received 1); CPU used: B $(cpu 1) s, A $(awk -v a="$(cpu 0)" -v b="$cpu_a" 'BEGIN { printf "%.2f", a - b }') s)"

cpu_a=$(cpu 0) cpu_b=$(cpu 1)
begin=$(date +%s.%N)
start 2 0 1
seconds=$(caught_up 2 "$begin")
[ "$(keys 2)" = "$ROWS" ] || { echo "catchup.sh: C holds $(keys 2) keys, not $ROWS" >&2; exit 1; }
rate=$(awk -v s="$seconds" -v r="$ROWS" 'BEGIN { printf "%d", r / s }')
echo "catchup_rows_per_s: $rate rows/s ($ROWS rows of 100 bytes to an empty C from A and B, which both hold them, in $seconds s from C's start; C's peak RSS $(peak 2) MiB, rows received $(received 2); CPU used: C $(cpu 2) s, A $(awk -v a="$(cpu 0)" -v b="$cpu_a" 'BEGIN { printf "%.2f", a - b }') s, B $(awk -v a="$(cpu 1)" -v b="$cpu_b" 'BEGIN { printf "%.2f", a - b }') s)"
grep -h "caught up\|catch-up finished" "$tmp/B.log" | sed 's/^/# B: /' >&2
grep -h "caught up\|catch-up finished" "$tmp/C.log" | sed 's/^/# C: /' >&2
for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done
pids=()

if [ "$ANCHOR" = 1 ]; then
  anchor=$(ONLY=sqlite bash ../shared/bench/peers.sh 2>/dev/null | grep "^sqlite_insert_NORMAL_txn10000:" | head -1 || true)
  echo "# anchor: $anchor" >&2
  sqlite_rate=$(echo "$anchor" | sed -n 's/^[^:]*: \([0-9]*\).*/\1/p')
  if [ -n "$sqlite_rate" ]; then
    echo "catchup_vs_sqlite: $(awk -v a="$rate" -v s="$sqlite_rate" 'BEGIN { printf "%.2f", a / s }') (C's $rate rows/s against raw SQLite's $sqlite_rate rows/s in 10,000-row transactions, synchronous=NORMAL, measured right after)"
  else
    echo "catchup_vs_sqlite: n/a (the SQLite anchor did not run)"
  fi
fi
