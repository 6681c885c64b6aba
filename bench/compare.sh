#!/usr/bin/env bash
# compare.sh - Converge beside the systems users would pick instead, in ONE run on this machine:
# the peers of ../shared/bench/peers.sh (Redis with AOF, etcd with 1 and 3 members, the nginx
# HTTP ceiling, raw SQLite inserts, the fsync rate), the Swift HTTP ceilings of
# ../shared/bench/swift_ceilings.sh (bare SwiftNIO, Hummingbird), and our node and cluster,
# measured with the same load tool (wrk -t1 -c64, unique keys, 16-byte values) and with kv bench.
#
#   bash bench/compare.sh                  # everything, DUR=10 s per wrk run (as root: installs what is missing)
#   SKIP_CEILINGS=1 bash bench/compare.sh  # without the Swift ceilings (they build for minutes the first time)
#
# Prints every figure as "name: value unit (details)", then a Markdown table of ratios; the run's
# raw output is kept in bench/results/compare-<date>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
shared=../shared/bench
mkdir -p bench/results
out="bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).txt"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-compare.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

swift build -c release --product kvnode >&2 && swift build -c release --product kv >&2 || exit 1
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

{
  echo "# compare.sh run at $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
  DUR=$DUR bash "$shared/peers.sh" 2>&1 | grep -E '^[A-Za-z0-9_]+: |other processes'
  [ -n "${SKIP_CEILINGS:-}" ] || bash "$shared/swift_ceilings.sh" "$DUR" 2>&1 | grep -E '^http_ceiling'
} | tee "$out"

start_node() { # start_node ID PORT DB FLAGS... ; waits until it answers
  local id=$1 port=$2 db=$3; shift 3
  .build/release/kvnode --id "$id" --port "$port" --db "$db" --log-level warning "$@" >>"$tmp/$id.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do .build/release/kv --node "http://127.0.0.1:$port" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "compare.sh: node $id did not start" >&2; cat "$tmp/$id.log" >&2; exit 1
}
stop_nodes() { for p in "${pids[@]}"; do { kill "$p"; wait "$p"; } 2>/dev/null; done; pids=(); }
wrk_fig() { # wrk_fig NAME URL SCRIPT DETAILS
  local o rps p99
  o=$(KEY_PREFIX=k KEYS=${KEYS:-1000} wrk -t1 -c64 -d"${DUR}s" --latency -s "$3" "$2" 2>&1)
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$o"); p99=$(awk '$1 == "99%" {print $2}' <<<"$o")
  echo "$1: $rps req/s ($4; wrk -t1 -c64 -d${DUR}s; $(awk '/requests in/ {print $1}' <<<"$o") requests, non-2xx $(awk '/Non-2xx/ {print $NF}' <<<"$o" | grep . || echo 0); p99 $p99)"
  LAST=$(awk '/requests in/ {print $1}' <<<"$o")
}

{
  for sync in normal full; do
    start_node A 18900 "$tmp/single-$sync.db" --sync "$sync"
    wrk_fig "converge_put_$sync" http://127.0.0.1:18900 bench/wrk/put_unique.lua "one node, --sync $sync, unique keys"
    if [ "$sync" = normal ]; then
      KEYS=$((LAST / 2)) wrk_fig converge_get http://127.0.0.1:18900 bench/wrk/get_existing.lua "one node, keys the PUT run stored"
    fi
    stop_nodes
  done
  start_node A 18901 "$tmp/A.db" --peer B=http://127.0.0.1:18902 --peer C=http://127.0.0.1:18903
  start_node B 18902 "$tmp/B.db" --peer A=http://127.0.0.1:18901 --peer C=http://127.0.0.1:18903
  start_node C 18903 "$tmp/C.db" --peer A=http://127.0.0.1:18901 --peer B=http://127.0.0.1:18902
  wrk_fig converge3_put_one_node http://127.0.0.1:18901 bench/wrk/put_unique.lua "three nodes, load on A, replicating to B and C"
  echo "# kv bench on the same cluster:"
  .build/release/kv bench put --node http://127.0.0.1:18901 --node http://127.0.0.1:18902 --node http://127.0.0.1:18903 \
    --clients 64 --duration "$DUR" --value-size 16 --json | sed 's/^/converge3_kvbench_put_json: /'
  stop_nodes
} | tee -a "$out"

fig() { grep -m1 "^$1: " "$out" | awk '{print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
echo
echo "| figure | ours | peer | ratio | target |"
echo "|---|---:|---:|---:|---|"
echo "| PUT/s, 1 node, --sync normal vs Redis SET (AOF everysec) | $(fig converge_put_normal) | $(fig redis_set_aof_everysec) | $(ratio "$(fig converge_put_normal)" "$(fig redis_set_aof_everysec)") | ≥ 0.6 |"
echo "| PUT/s, 1 node, --sync full vs Redis SET (AOF always) | $(fig converge_put_full) | $(fig redis_set_aof_always) | $(ratio "$(fig converge_put_full)" "$(fig redis_set_aof_always)") | ≥ 0.6 |"
echo "| GET/s, 1 node vs Redis GET | $(fig converge_get) | $(fig redis_get) | $(ratio "$(fig converge_get)" "$(fig redis_get)") | ≥ 0.6 |"
# The node serves HTTP on SwiftNIO directly (no Hummingbird since issue 6), so the ceiling of
# "the framework we run on" is the bare SwiftNIO handler (a GET answering "ok"; a PUT with a
# body costs it a little more).
echo "| PUT/s vs bare SwiftNIO ceiling (GET) | $(fig converge_put_normal) | $(fig http_ceiling_nio_get) | $(ratio "$(fig converge_put_normal)" "$(fig http_ceiling_nio_get)") | ≥ 0.8 |"
echo "| 3-node PUT/s on one node vs etcd 3 members (leader) | $(fig converge3_put_one_node) | $(fig etcd3_put_leader) | $(ratio "$(fig converge3_put_one_node)" "$(fig etcd3_put_leader)") | ≥ 5 |"
echo "| 3-node PUT/s vs our single node | $(fig converge3_put_one_node) | $(fig converge_put_normal) | $(ratio "$(fig converge3_put_one_node)" "$(fig converge_put_normal)") | ≥ 0.7 |"
echo "| PUT/s vs nginx GET ceiling | $(fig converge_put_normal) | $(fig http_ceiling_nginx) | $(ratio "$(fig converge_put_normal)" "$(fig http_ceiling_nginx)") | — |"
echo
echo "raw output: $out"
