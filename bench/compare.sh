#!/usr/bin/env bash
# compare.sh - Converge beside the systems users would pick instead, in ONE run on this machine:
# the peers of ../shared/bench/peers.sh (Redis with AOF, etcd with 1 and 3 members, the nginx
# HTTP ceiling, raw SQLite inserts, the fsync rate), the Swift HTTP ceilings of
# ../shared/bench/swift_ceilings.sh (bare SwiftNIO, Hummingbird), and our node and cluster,
# measured with the same load tool (wrk -t1 -c64, unique keys, 16-byte values) and with kv bench;
# then redis-benchmark against Redis and against our RESP port, one node and three (bench/resp.sh).
#
#   bash bench/compare.sh                  # everything, DUR=10 s per wrk run (as root: installs what is missing)
#   SKIP_CEILINGS=1 bash bench/compare.sh  # without the Swift ceilings (they build for minutes the first time)
#   SKIP_SCALE=1 bash bench/compare.sh     # without the million-key figures of bench/scale.sh
#   NO_DOCS=1 bash bench/compare.sh        # print the table, leave docs/performance.md alone
#   RESP_ONLY=1 bash bench/compare.sh      # only the redis-benchmark comparison (bench/resp.sh) and its table
#   SCRATCH=.build-x bash bench/compare.sh # build and run from another scratch path (default .build)
#   TABLE_ONLY=bench/results/compare-….txt bash bench/compare.sh   # remake the table from a run's raw output
#   OLD=/path/to/old/kvnode bash bench/compare.sh   # also single-node PUT and GET of that binary and
#                                          # ours, alternating (bench/ab.sh), to see a regression
#
# The tables replace the blocks between the compare.sh markers (HTTP and peers) and the
# compare.sh:resp markers (redis-benchmark) in docs/performance.md.
#
# Prints every figure as "name: value unit (details)", then a Markdown table of ratios; the run's
# raw output is kept in bench/results/compare-<date>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
SCRATCH=${SCRATCH:-.build}
shared=${SHARED:-../shared/bench}
if [ -z "${TABLE_ONLY:-}" ] && [ -z "${RESP_ONLY:-}" ] && [ ! -f "$shared/peers.sh" ]; then
  echo "compare.sh: $shared/peers.sh not found: the peers' script lives beside the repository (../shared/bench); run from a clone next to it or set SHARED=/path/to/shared/bench" >&2
  exit 1
fi
mkdir -p bench/results
out="${TABLE_ONLY:-bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).txt}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-compare.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

if [ -z "${TABLE_ONLY:-}" ]; then
swift build -c release --scratch-path "$SCRATCH" --product kvnode >&2 && swift build -c release --scratch-path "$SCRATCH" --product kv >&2 || exit 1
command -v redis-server >/dev/null || scripts/install-deps --redis-server >&2
if [ -z "${RESP_ONLY:-}" ]; then
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

{
  echo "# compare.sh run at $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
  DUR=$DUR bash "$shared/peers.sh" 2>&1 | grep -E '^[A-Za-z0-9_]+: |other processes'
  [ -n "${SKIP_CEILINGS:-}" ] || bash "$shared/swift_ceilings.sh" "$DUR" 2>&1 | grep -E '^http_ceiling'
} | tee "$out"

start_node() { # start_node ID PORT DB FLAGS... ; waits until it answers
  local id=$1 port=$2 db=$3; shift 3
  "$SCRATCH"/release/kvnode --id "$id" --port "$port" --db "$db" --log-level warning "$@" >>"$tmp/$id.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do "$SCRATCH"/release/kv --node "http://127.0.0.1:$port" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "compare.sh: node $id did not start" >&2; cat "$tmp/$id.log" >&2; exit 1
}
stop_nodes() { for p in "${pids[@]}"; do { kill "$p"; wait "$p"; } 2>/dev/null; done; pids=(); }
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; } # time the hypervisor took from this VM (100/s)
wrk_fig() { # wrk_fig NAME URL SCRIPT DETAILS
  local o rps p99 s0
  s0=$(steal_ticks)
  o=$(KEY_PREFIX=k KEYS=${KEYS:-1000} wrk -t1 -c64 -d"${DUR}s" --latency -s "$3" "$2" 2>&1)
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$o"); p99=$(awk '$1 == "99%" {print $2}' <<<"$o")
  echo "$1: $rps req/s ($4; wrk -t1 -c64 -d${DUR}s; $(awk '/requests in/ {print $1}' <<<"$o") requests, non-2xx $(awk '/Non-2xx/ {print $NF}' <<<"$o" | grep . || echo 0); p99 $p99; steal $(( ($(steal_ticks) - s0) / 100 )) s)"
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
  top=$(grep -m1 '^converge3_put_one_node: ' "$out" | awk '{print $2}')
  half=$(( ${top:-2000} / 2 ))
  echo "# kv bench on the same cluster, writes spread over A, B and C, at half the top rate ($half/s):"
  "$SCRATCH"/release/kv bench put --node http://127.0.0.1:18901 --node http://127.0.0.1:18902 --node http://127.0.0.1:18903 \
    --clients 16 --rate "$half" --duration "$DUR" --value-size 16 --json | sed 's/^/converge3_kvbench_half_rate_json: /'
  echo "# kv bench on the same cluster, unthrottled:"
  "$SCRATCH"/release/kv bench put --node http://127.0.0.1:18901 --node http://127.0.0.1:18902 --node http://127.0.0.1:18903 \
    --clients 64 --duration "$DUR" --value-size 16 --json | sed 's/^/converge3_kvbench_put_json: /'
  stop_nodes
  if [ -f bench/scale.sh ] && [ -z "${SKIP_SCALE:-}" ]; then
    echo "# a million keys (bench/scale.sh):"
    bash bench/scale.sh 2>&1 | grep -E '^[A-Za-z0-9_]+: '
  fi
} | tee -a "$out"
else
  echo "# compare.sh run at $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); RESP only" | tee "$out"
fi
{
  echo "# redis-benchmark against Redis and our RESP port (bench/resp.sh):"
  KV_BIN="$SCRATCH/release" bash bench/resp.sh 2>&1 | grep -E '^[A-Za-z0-9_]+: |^# '
} | tee -a "$out"
fi

fig() { grep -m1 "^$1: " "$out" | awk '{print $2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
json_field() { # json_field FIGURE PYTHON-EXPRESSION-ON-d
  grep -m1 "^$1: " "$out" | sed "s/^$1: //" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null || echo n/a
}
row() { # row FIGURE OURS PEER TARGET-RATIO TOOL [higher|lower]
  local r met
  r=$(ratio "$2" "$3")
  met=$(awk -v r="$r" -v t="$4" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 >= t + 0) print "yes"; else printf "no (%.0f%% of target)", 100 * r / t }')
  echo "| $1 | $2 | $3 | $r | ≥ $4 | $met | $5 |"
}
framework_ceiling=http_ceiling_hummingbird_put16; framework="Hummingbird PUT"
grep -q 'hummingbird' Package.swift || { framework_ceiling=http_ceiling_nio_get; framework="bare SwiftNIO"; }
top3=$(fig converge3_put_one_node); half=$(( ${top3:-0} / 2 ))
lag_p99=$(json_field converge3_kvbench_half_rate_json 'd["replication_lag_ms"]["p99"]')
lag_samples=$(json_field converge3_kvbench_half_rate_json 'd["replication_lag_ms"]["samples"]')
half_rps=$(json_field converge3_kvbench_half_rate_json 'd["requests_per_second"]')
rows_per_write=$(json_field converge3_kvbench_put_json 'd.get("rows_sent_per_write", "n/a")')
kvb_rps=$(json_field converge3_kvbench_put_json 'd["requests_per_second"]')
table=$(
  echo "Run of \`DUR=$DUR bash bench/compare.sh\` at $(head -1 "$out" | sed 's/^# compare.sh run at //'); machine: $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr), $(free -g | awk '/Mem:/ {print $2}') GiB. Raw output: \`$out\` (not committed)."
  echo
  echo "| figure | Converge | peer | ratio | target | met | load tool |"
  echo "|---|---:|---:|---:|---|---|---|"
  row "PUT/s, 1 node, \`--sync normal\` vs Redis SET (\`appendfsync everysec\`)" "$(fig converge_put_normal)" "$(fig redis_set_aof_everysec)" 0.6 "wrk / redis-benchmark"
  row "PUT/s, 1 node, \`--sync full\` vs Redis SET (\`appendfsync always\`)" "$(fig converge_put_full)" "$(fig redis_set_aof_always)" 0.6 "wrk / redis-benchmark"
  row "GET/s, 1 node vs Redis GET" "$(fig converge_get)" "$(fig redis_get)" 0.6 "wrk / redis-benchmark"
  row "PUT/s vs the $framework ceiling, same run" "$(fig converge_put_normal)" "$(fig $framework_ceiling)" 0.8 "wrk / wrk"
  row "3 nodes, PUT/s on one node vs etcd 3 members (leader)" "$(fig converge3_put_one_node)" "$(fig etcd3_put_leader)" 5 "wrk / wrk (etcd JSON gateway)"
  row "3 nodes, PUT/s on one node vs our single node" "$(fig converge3_put_one_node)" "$(fig converge_put_normal)" 0.7 "wrk / wrk"
  echo "| replication lag p99 at half the 3-node top rate (asked $half/s, reached $half_rps/s; $lag_samples samples) | $lag_p99 ms | | | ≤ 10 ms | $(awk -v l="$lag_p99" 'BEGIN { if (l == "n/a") print "n/a"; else if (l + 0 <= 10) print "yes"; else print "no" }') | kv bench |"
  if grep -q '^scale_catchup_rows_per_s: ' "$out"; then
    row "catch-up of $(fig scale_catchup_rows) rows after a restart vs raw SQLite 10 000-row transactions" "$(fig scale_catchup_rows_per_s)" "$(fig sqlite_insert_NORMAL_txn10000)" 0.5 "bench/scale.sh / sqlite_insert.c"
    echo "| peak RSS, node holding 1 000 000 keys under load / during the catch-up | $(fig scale_rss_loaded_mib) / $(fig scale_rss_catchup_mib) MiB | | | ≤ 64 MiB | $(awk -v a="$(fig scale_rss_loaded_mib)" -v b="$(fig scale_rss_catchup_mib)" 'BEGIN { if (a == "" || b == "") print "n/a"; else if (a + 0 <= 64 && b + 0 <= 64) print "yes"; else print "no" }') | bench/scale.sh |"
    echo "| start-up of a node holding 1 000 000 keys, to healthy | $(fig scale_startup_ms) ms | | | ≤ 1000 ms | $(awk -v a="$(fig scale_startup_ms)" 'BEGIN { if (a == "") print "n/a"; else if (a + 0 <= 1000) print "yes"; else print "no" }') | bench/scale.sh |"
  fi
  echo "| PUT/s vs the nginx GET ceiling (context) | $(fig converge_put_normal) | $(fig http_ceiling_nginx) | $(ratio "$(fig converge_put_normal)" "$(fig http_ceiling_nginx)") | — | | wrk / wrk |"
  echo
  echo "\`kv bench put\` on the same three nodes, unthrottled (64 clients over A, B and C): $kvb_rps req/s; rows sent per client write: $rows_per_write."
)
p16_bound=$(grep -m1 '^converge_set_p16: ' "$out" | grep -o 'mean group commit [^)]*' || echo n/a)
resp_table=$(
  echo "Run of \`RESP_ONLY=${RESP_ONLY:-} bash bench/compare.sh\` (bench/resp.sh) at $(head -1 "$out" | sed 's/^# compare.sh run at //'); $(grep -m1 '^# resp.sh at ' "$out" | sed 's/^# resp.sh at [^;]*; //'). Raw output: \`$out\` (not committed)."
  echo
  echo "| figure (redis-benchmark -c 50 -d 16) | Converge | Redis (AOF everysec) | ratio | target | met | bare SwiftNIO ceiling | Converge / ceiling |"
  echo "|---|---:|---:|---:|---|---|---:|---:|"
  resp_row() { # resp_row LABEL OURS PEER TARGET [CEILING]
    local r met; r=$(ratio "$2" "$3")
    if [ -z "$4" ]; then met="(reported)"; else met=$(awk -v r="$r" -v t="$4" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 >= t + 0) print "yes"; else printf "no (%.0f%% of target)", 100 * r / t }'); fi
    echo "| $1 | $2 | $3 | $r | ${4:+≥ $4} | $met | ${5:-} | ${5:+$(ratio "$2" "$5")} |"
  }
  resp_row "SET/s, 1 node, -P 1" "$(fig converge_set_p1)" "$(fig redis_set_p1)" 0.8 "$(fig nio_ceiling_set_p1)"
  resp_row "GET/s, 1 node, -P 1" "$(fig converge_get_p1)" "$(fig redis_get_p1)" 0.9 "$(fig nio_ceiling_get_p1)"
  resp_row "SET/s, 1 node, -P 16" "$(fig converge_set_p16)" "$(fig redis_set_p16)" "" "$(fig nio_ceiling_set_p16)"
  resp_row "GET/s, 1 node, -P 16" "$(fig converge_get_p16)" "$(fig redis_get_p16)" "" "$(fig nio_ceiling_get_p16)"
  resp_row "SET/s, 3 nodes (load on A), -P 1" "$(fig converge3_set_p1)" "$(fig redis_set_p1)" ""
  resp_row "GET/s, 3 nodes (load on A), -P 1" "$(fig converge3_get_p1)" "$(fig redis_get_p1)" ""
  resp_row "SET/s, 3 nodes (load on A), -P 16" "$(fig converge3_set_p16)" "$(fig redis_set_p16)" ""
  resp_row "GET/s, 3 nodes (load on A), -P 16" "$(fig converge3_get_p16)" "$(fig redis_get_p16)" ""
  echo
  echo "One-node SET -P 16: $p16_bound."
  if grep -q '^sqlite_upsert_converge_schema: ' "$out"; then
    echo
    echo "The floor under SET, same run (bench/sqlite_upsert.c: SQLite alone, one thread, the writer's upserts in groups of the -P 1 run's mean): $(fig sqlite_upsert_converge_schema) rows/s on Converge's schema — one-node SET -P 1 is $(ratio "$(fig converge_set_p1)" "$(fig sqlite_upsert_converge_schema)")× of it; $(fig sqlite_upsert_key_value_only) rows/s on a bare key/value table, $(fig sqlite_upsert_key_value_and_unique_seq) with a unique seq column added. Redis SET -P 1 is $(ratio "$(fig redis_set_p1)" "$(fig sqlite_upsert_key_value_only)")× the bare table's rate."
  fi
)
echo
if [ -z "${RESP_ONLY:-}" ]; then echo "$table"; fi
echo
echo "$resp_table"
update_docs() { # update_docs MARKER HEADING TEXT: replace the block between the MARKER markers
  MARKER="$1" HEADING="$2" TEXT="$3" python3 - <<'PY'
import os
path = "docs/performance.md"
text = open(path).read()
begin, end = f"<!-- {os.environ['MARKER']}:begin -->", f"<!-- {os.environ['MARKER']}:end -->"
block = begin + "\n" + os.environ["TEXT"] + "\n" + end
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + f"\n\n## {os.environ['HEADING']} (generated by bench/compare.sh)\n\n" + block + "\n"
open(path, "w").write(text)
PY
  echo "docs/performance.md updated (between the $1 markers)"
}
if [ -z "${NO_DOCS:-}" ]; then
  update_docs compare.sh:resp "RESP: redis-benchmark against Redis" "$resp_table"
  [ -n "${RESP_ONLY:-}" ] || update_docs compare.sh "Side by side" "$table"
fi
echo "raw output: $out"
if [ -n "${OLD:-}" ]; then
  echo "# single node, $OLD against .build/release/kvnode, alternating (bench/ab.sh)"
  OLD="$OLD" NEW=.build/release/kvnode DUR="$DUR" bash bench/ab.sh
fi
