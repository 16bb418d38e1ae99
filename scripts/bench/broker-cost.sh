#!/usr/bin/env bash
# The broker's CPU per hit at a fixed rate, for edge variants run one after
# another on one warmed broker (docs/performance.md, "The broker's cost per
# produce request"). At a fixed rate the edge's own CPU per hit is mostly
# wake-ups; what this measures is what each variant costs the broker.
#
# Usage: scripts/bench/broker-cost.sh RATE SECONDS VARIANT...
#   VARIANT = PARTITIONS:LINGER:COMPRESSION:WORKERS[:EDGE_BINARY]
#   e.g.    scripts/bench/broker-cost.sh 25000 15 6:2ms:lz4:4:/tmp/old/bin/edge 6:2ms:snappy:4
# Each variant: a fresh edge on CPU 1 (the broker's threads on CPU 0, as in
# make bench-load), 8 s of hits at RATE to warm it, then SECONDS measured:
# hits, produce requests (batch writes), records per request, the broker's
# cores and CPU µs per hit, the edge's µs per hit, and the rate client's p99.
# Needs bin/edge and bin/psbench (make bench-load builds both), Java, taskset.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
(($# >= 3)) || { sed -n 2,15p "$0" >&2; exit 2; }
rate=$1 secs=$2
shift 2
port=${BENCH_KAFKA_PORT:-19392}
out=$(mktemp -d "${TMPDIR:-/tmp}/pixelstream-broker-cost.XXXXXX")
psbench=bin/psbench
brokers=$(scripts/kafka/start.sh --port "$port" 2>"$out/kafka.log" | sed -n 's/^KAFKA_BROKERS=//p')
[[ -n $brokers ]] || { echo "broker-cost: the broker did not start ($out/kafka.log)" >&2; exit 1; }
kpid=$(cat "${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}/kafka/run/$port/kafka.pid")
epid=""
cleanup() {
  [[ -n $epid ]] && kill "$epid" 2>/dev/null || true
  scripts/kafka/stop.sh --port "$port" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
# The JIT compiles the produce path before anything is measured.
"$psbench" topics -brokers "$brokers" -partitions 6 cost.warm >/dev/null
# 20 hits per produce request, as make bench-load does: the broker compiles
# its produce path per request, and 500,000 hits in ~125 requests did not.
"$psbench" prefill -brokers "$brokers" -topic cost.warm -n 500000 -chunk 20 -seed 9 >/dev/null
taskset -a -p -c 0 "$kpid" >/dev/null
cpu() { "$psbench" proc -pid "$1" | sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p'; }
metric() {
  curl -fsS http://127.0.0.1:18100/metrics | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}
for v in "$@"; do
  IFS=: read -r parts linger codec workers bin <<<"$v"
  topic=cost.p$parts
  "$psbench" topics -brokers "$brokers" -partitions "$parts" "$topic" >/dev/null
  taskset -c 1 env KAFKA_BROKERS="$brokers" EDGE_ADDR=127.0.0.1:18080 EDGE_ADMIN_ADDR=127.0.0.1:18100 \
    EDGE_KEYS="bench-shop=shop,bench-news=news,bench-saas=saas" EDGE_TRUSTED_PROXIES=127.0.0.0/8 \
    LOG_LEVEL=warn EDGE_DRAIN_DELAY=0s RAW_TOPIC="$topic" EDGE_PUBLISH_LINGER="$linger" \
    EDGE_KAFKA_COMPRESSION="$codec" EDGE_PUBLISH_WORKERS="$workers" "${bin:-bin/edge}" >"$out/edge.log" 2>&1 &
  epid=$!
  until curl -fsS -o /dev/null http://127.0.0.1:18100/readyz 2>/dev/null; do sleep 0.2; done
  taskset -c 0 "$psbench" rate -rate "$rate" -duration 8s -label warm >/dev/null
  k0=$(cpu "$kpid") e0=$(cpu "$epid")
  b0=$(metric pixelstream_edge_publish_batch_records_count) h0=$(metric pixelstream_edge_published_total)
  taskset -c 0 "$psbench" rate -rate "$rate" -duration "${secs}s" -label r >"$out/rate.txt"
  k1=$(cpu "$kpid") e1=$(cpu "$epid")
  b1=$(metric pixelstream_edge_publish_batch_records_count) h1=$(metric pixelstream_edge_published_total)
  p99=$(grep -o 'r_p99_ms=[^ ]*' "$out/rate.txt" | cut -d= -f2)
  awk -v v="$v" -v k0="$k0" -v k1="$k1" -v e0="$e0" -v e1="$e1" -v b=$((b1 - b0)) -v h=$((h1 - h0)) -v s="$secs" -v p="$p99" \
    'BEGIN { printf "%s hits=%d requests=%d records_per_request=%.1f broker_cores=%.3f broker_us_per_hit=%.2f edge_us_per_hit=%.2f client_p99_ms=%s\n",
      v, h, b, h / b, (k1 - k0) / s, (k1 - k0) * 1e6 / h, (e1 - e0) * 1e6 / h, p }'
  kill "$epid"
  wait "$epid" 2>/dev/null || true
  epid=""
done
