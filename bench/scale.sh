#!/usr/bin/env bash
# scale.sh - the million-key figures of the performance issue, as compare.sh reads them:
# start-up of a node holding ROWS keys (bench/million.sh), its peak RSS under load, and a
# catch-up of ROWS rows to an empty node with its peak RSS (bench/catchup.sh, without its own
# SQLite anchor: compare.sh measures the anchor in the same run).
#
#   bash bench/scale.sh                 # ROWS=1000000, release binaries (built if missing)
#   BIN=/some/dir ROWS=200000 bash bench/scale.sh
#
# Prints "name: value unit (details)" lines; the scripts' own lines go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
if [ -z "${BIN:-}" ]; then
  swift build -c release --product kvnode >&2
  swift build -c release --product kv >&2
  BIN=.build/release
fi

million=$(BIN=$BIN ROWS=$ROWS bash bench/million.sh)
echo "$million" >&2
# The slowest of the three starts, in ms.
startup=$(echo "$million" | awk '/^startup_to_healthy: / { ms = $2 * 1000; if (ms > max) max = ms } END { printf "%d", max }')
loaded=$(echo "$million" | sed -n 's/^rss_under_load: peak \([0-9]*\) MiB.*/\1/p')
echo "scale_startup_ms: $startup ms (slowest of three starts of a node holding $ROWS keys, until GET /health answered)"
echo "scale_rss_loaded_mib: $loaded MiB (peak RSS of that node after kv bench mixed over its $ROWS keys)"

catchup=$(BIN=$BIN ROWS=$ROWS ANCHOR=0 bash bench/catchup.sh)
echo "$catchup" >&2
line=$(echo "$catchup" | grep '^catchup_rows_per_s: ')
echo "scale_catchup_rows: $ROWS rows"
echo "scale_catchup_rows_per_s: $(echo "$line" | awk '{print $2}') rows/s (catchup.sh said: ${line#catchup_rows_per_s: })"
echo "scale_rss_catchup_mib: $(echo "$line" | sed -n "s/.*C's peak RSS \([0-9]*\) MiB.*/\1/p") MiB (the catching-up node's peak RSS)"
