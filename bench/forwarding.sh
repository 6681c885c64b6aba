#!/usr/bin/env bash
# forwarding.sh - what replication costs a write: PUT/s of one node alone against PUT/s on one
# node of a three-node cluster, and the rows sent per client write.
#
#   bench/forwarding.sh               # DUR=10 seconds per figure, 64 clients, 100-byte values
#   BIN=/some/dir bench/forwarding.sh # use kvnode and kv from BIN instead of building them
#
# 1. A alone (no peers): `kv bench put --node A`.
# 2. A, B, C fresh, all load on A: `kv bench put --node A`; then, once every peer has
#    acknowledged every row, the rows the three nodes sent each other per client write.
# 3. The same three nodes, load spread over A, B and C: `kv bench put --node A --node B --node C`,
#    which reports replication lag and rows sent per client write itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
BASE=${BASE:-18620}
CLIENTS=${CLIENTS:-64}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/converge-forwarding.XXXXXX")
pids=()
stop_all() { local p; for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done; pids=(); }
trap 'stop_all; rm -rf "$tmp"' EXIT

if [ -z "${BIN:-}" ]; then
  swift build -c release --product kvnode >&2
  swift build -c release --product kv >&2
  BIN=.build/release
fi
kv=$BIN/kv
names=(A B C)
url() { echo "http://127.0.0.1:$((BASE + $1))"; }
start() { # start DIR INDEX PEER-INDEX...
  local dir=$1 i=$2 peers=() j
  shift 2
  for j in "$@"; do peers+=(--peer "${names[$j]}=$(url "$j")"); done
  "$BIN/kvnode" --id "${names[$i]}" --port "$((BASE + i))" --db "$dir/${names[$i]}.db" "${peers[@]}" >>"$dir/${names[$i]}.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$(url "$i")/health" 2>/dev/null && return 0; sleep 0.05; done
  echo "forwarding.sh: ${names[$i]} did not start" >&2; exit 1
}
put_rate() { sed -n 's/.* \([0-9]*\) req\/s.*/\1/p' | head -1; }
settled() { # wait until no node has rows to push (at most 60 s)
  for _ in $(seq 1 600); do
    local behind=0 i
    for i in 0 1 2; do
      "$kv" --node "$(url "$i")" status --json | grep -q '"to_push":[1-9]' && behind=1
    done
    [ $behind = 0 ] && return 0
    sleep 0.1
  done
  echo "forwarding.sh: replication did not settle within 60 s" >&2; exit 1
}
sum_status() { # sum_status FIELD: FIELD summed over the peers of every node
  local i
  for i in 0 1 2; do "$kv" --node "$(url "$i")" status --json; done | grep -o "\"$1\":[0-9]*" | awk -F: '{ s += $2 } END { print s + 0 }'
}
writes() { local i; for i in 0 1 2; do "$kv" --node "$(url "$i")" status --json; done | grep -o '"client_writes":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'; }
echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S') UTC; nproc $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg); binaries: $BIN; $CLIENTS clients, $DUR s, 100-byte values" >&2

mkdir "$tmp/one"
start "$tmp/one" 0
out=$("$kv" --node "$(url 0)" bench put --clients "$CLIENTS" --duration "$DUR" --keys 1000000 --value-size 100)
echo "$out" | sed 's/^/# single: /' >&2
single=$(echo "$out" | put_rate)
stop_all
echo "single_node_put: $single req/s (kv bench put, one node without peers)"

mkdir "$tmp/three"
start "$tmp/three" 0 1 2
start "$tmp/three" 1 0 2
start "$tmp/three" 2 0 1
out=$("$kv" --node "$(url 0)" bench put --clients "$CLIENTS" --duration "$DUR" --keys 1000000 --value-size 100)
echo "$out" | sed 's/^/# cluster: /' >&2
cluster=$(echo "$out" | put_rate)
settled
sent=$(sum_status rows_sent)
total=$(writes)
echo "cluster_put_on_one_node: $cluster req/s (kv bench put on A while A, B, C replicate) = $(awk -v c="$cluster" -v s="$single" 'BEGIN { printf "%.2f", c / s }') x the single node; rows sent per client write $(awk -v s="$sent" -v w="$total" 'BEGIN { printf "%.2f", s / w }') ($sent rows for $total writes)"
"$kv" --node "$(url 0)" --node "$(url 1)" --node "$(url 2)" bench put --clients "$CLIENTS" --duration "$DUR" --keys 1000000 --value-size 100 | sed 's/^/# spread: /' >&2
stop_all
