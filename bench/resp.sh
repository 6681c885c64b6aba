#!/usr/bin/env bash
# resp.sh - the same load tool against Converge's RESP port and against Redis: redis-benchmark,
# 50 clients, SET then GET, without pipelining (-P 1) and with 16 commands in flight per client
# (-P 16), against Redis (appendonly yes, appendfsync everysec), one Converge node (--sync
# normal) and a three-node Converge cluster (load on A, replicating to B and C). Run by
# bench/compare.sh (alone: RESP_ONLY=1 bash bench/compare.sh), or by itself.
#
# Figures go to stdout as "name: value unit (details)"; each Converge write run also reports the
# node's mean group commit (write requests per transaction) and the mean time of a transaction,
# from /metrics. Every run is bounded
# (timeout) and every server is stopped by PID on exit.
#
# Beside both, the same runs against a bare SwiftNIO server that answers SET and GET with
# constants and stores nothing (bench/ceilings/resp-nio, built here in release mode, about a
# minute the first time), on as many event loops as kvnode's default: the most a Swift server
# on this machine answers through the same tool, so the distance to Redis that is the
# platform's shows apart from ours.
#
# Env: KV_BIN (directory of a release kv and kvnode; default .build/release), N (requests per
# -P 1 run, default 100000; -P 16 runs take 5 N), PORT (first of 10 free ports, default 18950),
# CEILING=0 skips the SwiftNIO ceiling, CEILING_SCRATCH its build folder
# (default /tmp/converge-resp-ceiling).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${KV_BIN:-.build/release}
N=${N:-100000}
PORT=${PORT:-18950}
RPORT=$PORT
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-resp-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
  { echo "resp.sh: redis-server and redis-benchmark are needed: scripts/install-deps --redis-server" >&2; exit 1; }
[ -x "$BIN/kvnode" ] || { echo "resp.sh: no $BIN/kvnode; swift build -c release first, or set KV_BIN" >&2; exit 1; }

wait_ping() { for _ in $(seq 1 100); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.1; done; return 1; }
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {printf "%.6f", $2}'; }

# bench NAME RESP-PORT TEST PIPELINE REQUESTS HTTP-PORT(optional, for the group size)
bench() {
  local name=$1 port=$2 test=$3 pipeline=$4 requests=$5 http=${6:-} out rps p50 s0 t0 r0 x0 groups=""
  s0=$(steal_ticks)
  [ -n "$http" ] && { t0=$(metric "$http" kv_store_transactions); r0=$(metric "$http" kv_store_write_requests); x0=$(metric "$http" kv_store_transaction_seconds); }
  out=$(timeout 180 redis-benchmark -h 127.0.0.1 -p "$port" -t "$test" -c 50 -P "$pipeline" -n "$requests" -d 16 -r 100000 --csv 2>/dev/null)
  rps=$(awk -F'","' 'NR == 2 {gsub(/"/, "", $2); printf "%d", $2}' <<<"$out")
  p50=$(awk -F'","' 'NR == 2 {print $5}' <<<"$out")  # test, rps, avg, min, p50, p95, p99, max
  if [ -n "$http" ] && [ "$test" = set ]; then
    local t1 r1 x1; t1=$(metric "$http" kv_store_transactions); r1=$(metric "$http" kv_store_write_requests)
    x1=$(metric "$http" kv_store_transaction_seconds)
    groups="; $(awk -v r="$r1" -v r0="$r0" -v t="$t1" -v t0="$t0" -v x="$x1" -v x0="$x0" 'BEGIN {
      if (t - t0 > 0) printf "mean group commit %.1f writes per transaction, %.2f ms per transaction", (r - r0) / (t - t0), 1000 * (x - x0) / (t - t0)
      else print "no transactions" }')"
  fi
  echo "$name: ${rps:-n/a} ops/s (redis-benchmark -t $test -c 50 -P $pipeline -n $requests -d 16 -r 100000; p50 ${p50:-?} ms; steal $(( ($(steal_ticks) - s0) / 100 )) s$groups)" | tee -a "$tmp/figures"
}

start_node() { # start_node ID HTTP RESP FLAGS...
  local id=$1 http=$2 resp=$3; shift 3
  "$BIN/kvnode" --id "$id" --port "$http" --resp-port "$resp" --db "$tmp/$id.db" --log-level warning "$@" >>"$tmp/$id.log" 2>&1 &
  pids+=($!)
  wait_ping "$resp" || { echo "resp.sh: node $id did not answer on $resp" >&2; cat "$tmp/$id.log" >&2; exit 1; }
}
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }

echo "# resp.sh at $(date -u '+%Y-%m-%d %H:%M:%S') UTC; $(redis-server --version | cut -d' ' -f1-3); load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$tmp/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$tmp/redis" --save "" --appendonly yes --appendfsync everysec \
  --daemonize no >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_ping "$RPORT" || { echo "resp.sh: redis-server did not start" >&2; exit 1; }
start_node A $((PORT + 1)) $((PORT + 2))
CPORT=$((PORT + 9))
if [ "${CEILING:-1}" != 0 ]; then
  scratch=${CEILING_SCRATCH:-/tmp/converge-resp-ceiling}
  if swift build -c release --package-path bench/ceilings/resp-nio --scratch-path "$scratch" >"$tmp/ceiling-build.log" 2>&1; then
    # As many event loops as kvnode's default (one less than the cores, at least 1).
    "$scratch/release/resp-ceiling" "$CPORT" "$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))" >/dev/null 2>&1 &
    pids+=($!)
    wait_ping "$CPORT" || { echo "resp.sh: the SwiftNIO ceiling did not answer on $CPORT" >&2; CPORT=; }
  else
    echo "resp.sh: the SwiftNIO ceiling did not build ($(grep -m1 error: "$tmp/ceiling-build.log")); figures without it" >&2
    CPORT=
  fi
else
  CPORT=
fi

# Redis, the ceiling and our node take turns, case by case, so a change in the machine's load hits all.
for pipeline in 1 16; do
  requests=$(( pipeline == 1 ? N : 5 * N ))
  for test in set get; do
    bench "redis_${test}_p${pipeline}" "$RPORT" "$test" "$pipeline" "$requests"
    [ -n "$CPORT" ] && bench "nio_ceiling_${test}_p${pipeline}" "$CPORT" "$test" "$pipeline" "$requests"
    bench "converge_${test}_p${pipeline}" $((PORT + 2)) "$test" "$pipeline" "$requests" $((PORT + 1))
  done
done
stop_all

# The floor under a write: SQLite alone running the writer's upserts on the same schema, in
# groups of the size the -P 1 runs gave (bench/sqlite_upsert.c; needs gcc and libsqlite3-dev).
if command -v gcc >/dev/null && gcc -O2 -o "$tmp/sqlite_upsert" bench/sqlite_upsert.c -lsqlite3 2>"$tmp/gcc.log"; then
  group=$(grep -m1 "^converge_set_p1: " "$tmp/figures" 2>/dev/null | grep -o 'mean group commit [0-9.]*' | awk '{printf "%d", $4 + 0.5}')
  mkdir -p "$tmp/sqlite" && "$tmp/sqlite_upsert" "$tmp/sqlite" 100000 200000 "${group:-14}"
  rm -rf "$tmp/sqlite"
else
  echo "resp.sh: bench/sqlite_upsert.c did not build (gcc and libsqlite3-dev needed); no SQLite floor" >&2
fi

start_node A $((PORT + 3)) $((PORT + 4)) --peer B=http://127.0.0.1:$((PORT + 5)) --peer C=http://127.0.0.1:$((PORT + 7))
start_node B $((PORT + 5)) $((PORT + 6)) --peer A=http://127.0.0.1:$((PORT + 3)) --peer C=http://127.0.0.1:$((PORT + 7))
start_node C $((PORT + 7)) $((PORT + 8)) --peer A=http://127.0.0.1:$((PORT + 3)) --peer B=http://127.0.0.1:$((PORT + 5))
for pipeline in 1 16; do
  requests=$(( pipeline == 1 ? N : 5 * N ))
  for test in set get; do
    bench "converge3_${test}_p${pipeline}" $((PORT + 4)) "$test" "$pipeline" "$requests" $((PORT + 3))
  done
done
echo "converge3_rows_to_push_after: $(curl -s "http://127.0.0.1:$((PORT + 3))/metrics" | awk '$1 ~ /^kv_peer_rows_to_push/ {s += $2} END {printf "%d", s}') rows (A's feed not yet acknowledged by B and C when the last run ended)"
