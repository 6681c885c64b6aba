#!/usr/bin/env bash
# http.sh - single-node PUT and GET throughput of a release kvnode, measured with wrk at
# concurrency 1 and 64, with group commit on (the default) and off (--no-group-commit), and
# with --sync normal and full, and GETs under a PUT load with and without the read pool. One line per figure on stdout: "name: value req/s (details)",
# the details ending with the node's CPU time per request (user+system, from /proc).
#
#   bench/http.sh                 # all combinations, DUR seconds each (default 10)
#   DUR=5 SYNC="normal" bench/http.sh
#
# The node listens on 127.0.0.1:18500 with a fresh database in a temp dir, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
SYNC=${SYNC:-normal full}
PORT=${PORT:-18500}
here=bench/wrk
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-http.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "http.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }
swift build -c release --product kvnode >&2
echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

start_node() { # start_node NAME FLAGS...
  local name=$1
  shift
  rm -f "$tmp"/node.db*
  .build/release/kvnode --id A --port "$PORT" --db "$tmp/node.db" --log-level warning "$@" >"$tmp/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "http.sh: kvnode did not start; log:" >&2; cat "$tmp/$name.log" >&2; exit 1
}
stop_node() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

node_cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # the node's user+system time, in ticks (100/s)

run_wrk() { # run_wrk NAME CONNECTIONS SCRIPT -> prints the figure, returns requests done
  local name=$1 c=$2 script=$3 out rps p50 p99 reqs errors cpu0 cpu1
  cpu0=$(node_cpu)
  out=$(wrk -t1 -c"$c" -d"${DUR}s" --latency -s "$script" "http://127.0.0.1:$PORT" 2>&1)
  cpu1=$(node_cpu)
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  # CPU time of the node per request: on a shared, noisy box it moves far less than req/s does.
  echo "$name: $rps req/s (wrk -t1 -c$c -d${DUR}s; $reqs requests, non-2xx ${errors:-0}; p50 $p50, p99 $p99; node CPU $(( (cpu1 - cpu0) * 10000000 / (reqs > 0 ? reqs : 1) )) ns/request)"
  LAST_REQUESTS=$reqs
}

for sync in $SYNC; do
  for mode in group single; do
    flags=(--sync "$sync")
    [ "$mode" = single ] && flags+=(--no-group-commit)
    for c in 1 64; do
      start_node "$sync-$mode-c$c" "${flags[@]}"
      KEY_PREFIX="k" run_wrk "put_${sync}_${mode}commit_c$c" "$c" "$here/put_unique.lua"
      KEY_PREFIX="k" KEYS=$((LAST_REQUESTS / 2 > 0 ? LAST_REQUESTS / 2 : 1)) \
        run_wrk "get_${sync}_${mode}commit_c$c" "$c" "$here/get_existing.lua"
      stop_node
    done
  done
done

# What the read pool buys: GETs while PUTs run at full speed, with the pool (4 read-only
# connections beside the writer) and without it (--read-connections 0: reads queue behind writes).
for readers in 4 0; do
  start_node "reads-$readers" --read-connections "$readers"
  KEY_PREFIX="r" run_wrk "prefill_readers$readers" 32 "$here/put_unique.lua" >/dev/null
  keys=$LAST_REQUESTS
  KEY_PREFIX="w" wrk -t1 -c32 -d"${DUR}s" -s "$here/put_unique.lua" "http://127.0.0.1:$PORT" >"$tmp/bg.out" 2>&1 &
  bg=$!
  KEY_PREFIX="r" KEYS=$keys run_wrk "get_under_put_load_readers$readers" 32 "$here/get_existing.lua"
  wait "$bg"
  echo "put_beside_gets_readers$readers: $(awk '/Requests\/sec/ {printf "%d", $2}' "$tmp/bg.out") req/s (the concurrent wrk -t1 -c32 PUT load)"
  stop_node
done
