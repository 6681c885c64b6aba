#!/usr/bin/env bash
# durability.sh - what chosen durability costs: `kv bench` against node A of a fresh three-node
# cluster on this machine, puts at w=1, quorum and all, then gets at r=1 and quorum, each for
# DUR seconds with CLIENTS clients, ROUNDS times in turn (so the machine's noise spreads over all
# levels alike). Keys bench/0..KEYS-1, 100-byte values; the gets read what the puts wrote.
#
#   ROUNDS=2 DUR=8 CLIENTS=50 bash bench/durability.sh
#
# One line per run: "level round req/s p50-ms p99-ms errors". Loopback hides the network: each
# level above 1 adds one round trip to a peer (two hops for a read's copy), which here costs
# microseconds and on a real network costs the RTT, so compare the ratios, not the latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
KVNODE=${KVNODE:-.build/release/kvnode}
KV=${KV:-.build/release/kv}
ROUNDS=${ROUNDS:-2}
DUR=${DUR:-8}
CLIENTS=${CLIENTS:-50}
KEYS=${KEYS:-10000}
PORT=${PORT:-18700}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-durability.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ -x "$KVNODE" ] && [ -x "$KV" ] || { echo "durability.sh: build first: swift build -c release" >&2; exit 1; }
echo "# $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); $CLIENTS clients, ${DUR}s per run" >&2

names=(A B C)
for i in 0 1 2; do
  peers=()
  for j in 0 1 2; do [ "$i" != "$j" ] && peers+=(--peer "${names[$j]}=http://127.0.0.1:$((PORT + j))"); done
  "$KVNODE" --id "${names[$i]}" --port $((PORT + i)) --db "$tmp/${names[$i]}.db" --log-level warning "${peers[@]}" \
    >"$tmp/${names[$i]}.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 1 100); do "$KV" --node "http://127.0.0.1:$((PORT + i))" status >/dev/null 2>&1 && break; sleep 0.1; done
done
node="http://127.0.0.1:$PORT"
# Every key exists before the gets, on every node.
"$KV" bench put --node "$node" --clients "$CLIENTS" --duration 3s --keys "$KEYS" --w all >/dev/null

run() { # run LABEL ROUND WORKLOAD FLAG VALUE
  "$KV" bench "$3" --node "$node" --clients "$CLIENTS" --duration "${DUR}s" --keys "$KEYS" "$4" "$5" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); l=r.get("latency_ms",{}); print("%s %s %d %.2f %.2f %d" % (sys.argv[1], sys.argv[2], r["requests_per_second"], l.get("p50",0), l.get("p99",0), r["errors"]))' "$1" "$2"
}

for round in $(seq 1 "$ROUNDS"); do
  for w in 1 quorum all; do run "put-w=$w" "$round" put --w "$w"; done
  for r in 1 quorum; do run "get-r=$r" "$round" get --r "$r"; done
done
