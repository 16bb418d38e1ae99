#!/usr/bin/env bash
# The load and throughput harness of docs/performance.md, end to end:
# starts a real Kafka broker on its own port, builds bin/edge, bin/enricher
# and psbench (test/bench), runs
#   1+2. wrk against a bare fasthttp GIF server (the baseline) and the real
#      edge publishing to Kafka, in alternating rounds, keep-alive and a new
#      connection per hit; then constant-rate runs at half the edge's
#      keep-alive maximum (and the bare server at the same rate: the noise
#      floor), with Poisson arrivals and then in 1 ms bursts;
#   3. end-to-end latency at a fixed rate (edge → Kafka → enricher → Kafka →
#      consumer);
#   4. enricher throughput draining a pre-filled raw topic;
# records peak RSS (VmHWM) and CPU time from /proc (and, per wrk round, the
# idle time of the load generator's and the server's CPU), stops everything it
# started (by pid) and prints a summary table. Every figure is a ratio or is
# read next to the baseline of the same run: the machine is shared.
#
# Usage: scripts/bench/run.sh            (make bench-load)
#
# Environment (defaults in brackets):
#   BENCH_KAFKA_PORT     broker port [19392] (controller port +1)
#   BENCH_DURATION       seconds per wrk / constant-rate run [10]
#   BENCH_ROUNDS         alternating bare/edge rounds per connection mode [3]
#   BENCH_CONNS          wrk connections [64]
#   BENCH_PREFILL        raw hits pre-filled for the enricher [1000000]
#   BENCH_PREFILL_HEAD   raw hits of the head-only mix (every User-Agent cached) [500000]
#   BENCH_PREFILL_COMPRESSION
#                        codec of the pre-filled raw hits the enricher drains: what the
#                        edges it reads from use [snappy, the edge's default]
#   BENCH_E2E_WARM       realistic raw hits the e2e enricher drains first, to warm its
#                        User-Agent cache as a long-running enricher's is [200000]
#   BENCH_E2E_RATE       hits/s of the end-to-end run [5000]
#   BENCH_E2E_DURATION   seconds of the end-to-end run [15]
#   BENCH_E2E_WARMUP     seconds of hits at BENCH_E2E_RATE through the edge before the
#                        measured run, so the broker's JIT has compiled the paths that
#                        rate takes, as a long-running broker's has [10]
#   BENCH_BROKER_WARM    raw hits written to a topic of their own right after the
#                        broker starts, before anything is measured, so the
#                        edge rounds do not pay the JVM's JIT compilation of the
#                        produce path (a long-running broker has done it) [500000]
#   BENCH_BROKER_WARM_CHUNK
#                        hits per write of that warm-up [20: 25,000 produce requests;
#                        the JIT compiles per-request code only after thousands of
#                        requests, and the edge's 10 ms linger sends ~100 a second]
#   BENCH_BROKER_SETTLE  seconds the broker has been up before the first round; until
#                        then the harness goes on writing small warm-up batches [150: a
#                        fresh broker still JIT-compiles its own periodic paths (KRaft's
#                        metadata log, log reads) for about two minutes, and that landed
#                        in the second new-connection round, on the load generator's CPU]
#   BENCH_EDGE_WARM      seconds of keep-alive and then of Connection: close traffic
#                        to the edge before its first round, for the same reason [10]
#   BENCH_OUT            output directory [a new /tmp/pixelstream-bench.XXXXXX]
#   BENCH_PROFILE=1      also save CPU and allocation profiles of the edge
#                        and the enricher, and CPU profiles of the bare
#                        server (pprof), of the first rounds and of the
#                        half-rate runs, into BENCH_OUT
#   BENCH_PIN=0          do not pin with taskset
#   BENCH_BROKER_CPU     CPU list the broker is pinned to during the edge and bare
#                        runs [0, the load generator's CPU]; "any" leaves it unpinned
#   BENCH_SKIP=...       comma list of parts to skip: edge,e2e,enricher
#   BENCH_EDGE_BIN, BENCH_ENRICHER_BIN
#                        binaries to measure instead of the tree's bin/edge and
#                        bin/enricher: A/B runs against an older build, alternated
#                        in the same minutes (the machine's noise moves by the minute)
#
# Placement (2 cores): the load generator (wrk / psbench rate) on CPU 0, the
# server under test (bare or edge) on CPU 1; during those runs the broker
# (JVM) is moved to CPU 0 too, so the edge does not share its CPU with the
# broker it publishes to (in production they are different machines). The
# enricher and the e2e run are not pinned.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

kport=${BENCH_KAFKA_PORT:-19392}
dur=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNS:-64}
prefill=${BENCH_PREFILL:-1000000}
prefill_head=${BENCH_PREFILL_HEAD:-500000}
prefill_codec=${BENCH_PREFILL_COMPRESSION:-snappy}
e2e_warm=${BENCH_E2E_WARM:-200000}
broker_warm=${BENCH_BROKER_WARM:-500000}
broker_warm_chunk=${BENCH_BROKER_WARM_CHUNK:-20}
broker_settle=${BENCH_BROKER_SETTLE:-150}
edge_warm=${BENCH_EDGE_WARM:-10}
e2e_rate=${BENCH_E2E_RATE:-5000}
e2e_dur=${BENCH_E2E_DURATION:-15}
e2e_warmup=${BENCH_E2E_WARMUP:-10}
profile=${BENCH_PROFILE:-0}
pin=${BENCH_PIN:-1}
skip=",${BENCH_SKIP:-},"
out=${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/pixelstream-bench.XXXXXX")}
mkdir -p "$out"
results=$out/results.txt
: >"$results"

edge_addr=127.0.0.1:18080
edge_admin=127.0.0.1:18100
bare_addr=127.0.0.1:18480
bare_admin=127.0.0.1:18481
enr_admin=127.0.0.1:18101
t_start=$SECONDS

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
skipped() { [[ $skip == *",$1,"* ]]; }

for c in wrk java curl go; do command -v "$c" >/dev/null || die "$c not found"; done
load_cpu="" srv_cpu="" broker_cpu=""
if [[ $pin == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  load_cpu="taskset -c 0"
  srv_cpu="taskset -c 1"
  if [[ ${BENCH_BROKER_CPU-0} != "" && ${BENCH_BROKER_CPU-0} != any ]]; then
    broker_cpu=${BENCH_BROKER_CPU-0}
  fi
fi
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)

# --- processes we start, stopped by pid on exit --------------------------------------
pids=()
kafka_started=0
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ $kafka_started == 1 ]]; then
    scripts/kafka/stop.sh --port "$kport" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# start NAME CPU-PREFIX CMD...: run in the background, log to $out/NAME.log;
# the pid is left in $last_pid (not printed: a $(…) subshell would lose it).
last_pid=""
start() {
  local name=$1 cpu=$2
  shift 2
  # shellcheck disable=SC2086
  $cpu "$@" >"$out/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

# stop PID: SIGTERM, wait up to 30 s, then SIGKILL.
stop() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  local keep=()
  for q in "${pids[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
  pids=("${keep[@]}")
}

wait_http() { # URL TIMEOUT_S
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || die "$1 did not answer within $2 s"
    sleep 0.2
  done
}

record() { tee -a "$results"; }
kv() { grep -o "\b$1=[^ ]*" "$results" | tail -n1 | cut -d= -f2; }

# metric ADMIN NAME: sum of a metric family on an admin endpoint
metric() {
  curl -fsS "http://$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }'
}

# wrkrun LABEL URL [extra wrk args]: a bounded wrk run of the realistic mix.
wrkrun() {
  local label=$1 url=$2
  shift 2
  # shellcheck disable=SC2086
  $load_cpu wrk -t2 -c"$conns" -d"${dur}s" --timeout 5s --latency -s scripts/bench/realistic.lua "$@" "$url" -- "$out/requests.tsv" \
    >"$out/wrk-$label.txt" 2>&1 || die "wrk $label failed: $(tail -n3 "$out/wrk-$label.txt")"
  local line
  line=$(grep '^WRK_RESULT' "$out/wrk-$label.txt") || die "wrk $label printed no result"
  echo "$line" | sed "s/^WRK_RESULT //; s/\([a-z0-9_]*\)=/${label}_\1=/g" | record
}

warmup() { # URL SECONDS [wrk args]
  local url=$1 secs=$2
  shift 2
  # shellcheck disable=SC2086
  $load_cpu wrk -t2 -c"$conns" -d"${secs}s" "$@" -s scripts/bench/realistic.lua "$url" -- "$out/requests.tsv" >/dev/null 2>&1 || true
}

# --- build -----------------------------------------------------------------------------
log "output in $out"
log "building bin/edge, bin/enricher and psbench"
make -s build >/dev/null
(cd test && go build -o "$root/bin/psbench" ./bench)
psbench=$root/bin/psbench
edge_bin=${BENCH_EDGE_BIN:-bin/edge}
enricher_bin=${BENCH_ENRICHER_BIN:-bin/enricher}

city=$(scripts/geoip/fetch.sh 2>/dev/null | tail -n1) || city=""
if [[ -z $city || ! -f $city ]]; then
  log "warning: no GeoLite2 City database: the enricher runs WITHOUT geo"
  city=""
fi

# --- broker and topics -------------------------------------------------------------------
log "starting Kafka on 127.0.0.1:$kport"
kafka_started=1
kafka_t0=$(date +%s)
brokers=$(scripts/kafka/start.sh --port "$kport" 2>"$out/kafka-start.log" | sed -n 's/^KAFKA_BROKERS=//p')
[[ -n $brokers ]] || die "the broker did not start (see $out/kafka-start.log)"
kafka_pid=$(cat "${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}/kafka/run/$kport/kafka.pid")
"$psbench" topics -brokers "$brokers" -partitions 6 \
  bench.load.raw bench.e2e.raw bench.e2e.enriched bench.tput.raw bench.tput.enriched \
  bench.head.raw bench.head.enriched bench.deadletter bench.warm.raw >&2
if ((broker_warm > 0)); then
  log "warming the broker: $broker_warm raw hits to bench.warm.raw, $broker_warm_chunk per produce request"
  "$psbench" prefill -brokers "$brokers" -topic bench.warm.raw -n "$broker_warm" -chunk "$broker_warm_chunk" -seed 9 | sed 's/\([a-z_]*\)=/broker_warm_\1=/g' | record >&2
fi
if ! skipped edge && (($(date +%s) - kafka_t0 < broker_settle)); then
  log "letting the broker settle until it has been up ${broker_settle}s, with small warm-up writes"
  settle_writes=0
  while (($(date +%s) - kafka_t0 < broker_settle)); do
    # ~0.2 s of writes, then a pause (~14,000 hits/s in all): enough that the
    # produce path stays hot, little enough that the warm topic stays small.
    "$psbench" prefill -brokers "$brokers" -topic bench.warm.raw -n 10000 -chunk 10 -seed "$((10 + settle_writes))" >/dev/null
    settle_writes=$((settle_writes + 1))
    sleep 0.5
  done
  echo "broker_settle_s=$(($(date +%s) - kafka_t0)) broker_settle_prefills=$settle_writes" | record >&2
fi
"$psbench" gen -n 20000 -o "$out/requests.tsv" -seed 1 | record >&2
"$psbench" mixstats -n "$prefill" -seed 2 | record >&2

edge_env=(
  KAFKA_BROKERS="$brokers" EDGE_ADDR="$edge_addr" EDGE_ADMIN_ADDR="$edge_admin"
  EDGE_KEYS="bench-shop=shop,bench-news=news,bench-saas=saas" EDGE_TRUSTED_PROXIES=127.0.0.0/8
  EDGE_INSTANCE=bench LOG_LEVEL=warn EDGE_DRAIN_DELAY=0s EDGE_SHUTDOWN_TIMEOUT=10s
)

# --- 1 and 2. bare fasthttp GIF server and the edge, alternating -----------------------------
# Both servers run at once, pinned to the same CPU; only the one under load
# uses it. Rounds alternate bare, edge, bare, edge… so that both see the same
# neighbours (the machine is shared): each round gives a ratio, and the
# summary reports the median. CPU seconds per request (utime+stime of the
# server process) are the second, placement-independent comparison.
cpu_of() { "$psbench" proc -pid "$1" | sed -n 's/.*cpu_s=\([0-9.]*\).*/\1/p'; }

# cpu_idle: idle (with iowait) and steal ticks of CPU 0 and CPU 1, from /proc/stat.
cpu_idle() { awk '$1 == "cpu0" || $1 == "cpu1" { printf "%d %d ", $5 + $6, $9 }' /proc/stat; }

# snap PID: the server's and the broker's CPU seconds, then cpu_idle; usage
# turns two snaps around a run into cores.
snap() { echo "$(cpu_of "$1") $(cpu_of "$kafka_pid") $(cpu_idle)"; }

# usage LABEL BEFORE AFTER [REQUESTS]: the server's CPU per request (with
# REQUESTS) and cores, the broker's cores, and how much of each CPU stayed
# idle or was stolen over the last $dur seconds: an idle load generator CPU
# means the server bounded the run, a busy one the load generator (with the
# broker beside it).
usage() {
  awk -v l="$1" -v s0="$2" -v s1="$3" -v r="${4:-0}" -v d="$dur" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { split(s0, x); split(s1, y)
      if (r > 0) printf "%s_cpu_us_per_req=%.2f ", l, (y[1]-x[1])*1e6/r
      printf "%s_server_cores=%.2f %s_broker_cores=%.2f", l, (y[1]-x[1])/d, l, (y[2]-x[2])/d
      printf " %s_cpu0_idle=%.2f %s_cpu0_steal=%.2f %s_cpu1_idle=%.2f %s_cpu1_steal=%.2f\n", l, (y[3]-x[3])/hz/d, l, (y[4]-x[4])/hz/d, l, (y[5]-x[5])/hz/d, l, (y[6]-x[6])/hz/d }' | record >&2
}

# measured LABEL PID URL [wrk args]: wrkrun plus usage.
measured() {
  local label=$1 pid=$2 url=$3 s0
  shift 3
  s0=$(snap "$pid")
  wrkrun "$label" "$url" "$@"
  usage "$label" "$s0" "$(snap "$pid")" "$(kv "${label}_requests")"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2] + v[NR/2+1]) / 2 }'; }

if ! skipped edge; then
  log "bare fasthttp GIF server vs edge publishing to Kafka: $rounds rounds × (keep-alive, Connection: close) × ${dur}s"
  bare_pprof=()
  [[ $profile == 1 ]] && bare_pprof=(-pprof "$bare_admin")
  start bare "$srv_cpu" "$psbench" bare -addr "$bare_addr" "${bare_pprof[@]}"
  bare=$last_pid
  start edge "$srv_cpu" env "${edge_env[@]}" RAW_TOPIC=bench.load.raw "$edge_bin"
  edge=$last_pid
  wait_http "http://$bare_addr/" 10
  wait_http "http://$edge_admin/readyz" 30
  warmup "http://$bare_addr" 2
  warmup "http://$edge_addr" 2
  if [[ -n $broker_cpu ]]; then
    # The broker's threads (all of them: -a) move to the load generator's
    # CPU, so the edge has its CPU to itself as the bare server does.
    taskset -a -p -c "$broker_cpu" "$kafka_pid" >/dev/null
  fi
  # The edge's traffic in both modes until the broker has compiled what
  # it takes: produce requests of the sizes each mode makes. Without this
  # the first round of each mode found the broker's JIT compilers at
  # 0.1-0.25 cores of the load generator's CPU.
  warmup "http://$edge_addr" "$edge_warm"
  warmup "http://$edge_addr" "$edge_warm" -H "Connection: close"
  for r in $(seq "$rounds"); do
    for mode in ka close; do
      args=()
      [[ $mode == close ]] && args=(-H "Connection: close")
      if [[ $profile == 1 && $r == 1 ]]; then
        # The bare server's profile of the same mode, to set the edge's
        # against: what the edge spends beyond it is the edge's own.
        curl -fsS -o "$out/bare-$mode-cpu.pprof" "http://$bare_admin/debug/pprof/profile?seconds=$((dur - 2))" &
        prof_pid=$!
      fi
      measured "bare_${mode}_r$r" "$bare" "http://$bare_addr" "${args[@]}"
      if [[ $profile == 1 && $r == 1 ]]; then
        wait "$prof_pid" || true
        curl -fsS -o "$out/edge-$mode-cpu.pprof" "http://$edge_admin/debug/pprof/profile?seconds=$((dur - 2))" &
        prof_pid=$!
      fi
      measured "edge_${mode}_r$r" "$edge" "http://$edge_addr" "${args[@]}"
      if [[ $profile == 1 && $r == 1 ]]; then
        wait "$prof_pid" || true
        curl -fsS -o "$out/edge-$mode-allocs.pprof" "http://$edge_admin/debug/pprof/allocs" || true
      fi
    done
  done
  for mode in ka close; do
    rs="" cs=""
    for r in $(seq "$rounds"); do
      rs+=" $(awk -v a="$(kv "edge_${mode}_r${r}_rps")" -v b="$(kv "bare_${mode}_r${r}_rps")" 'BEGIN { printf "%.3f", a / b }')"
      cs+=" $(awk -v a="$(kv "bare_${mode}_r${r}_cpu_us_per_req")" -v b="$(kv "edge_${mode}_r${r}_cpu_us_per_req")" 'BEGIN { printf "%.3f", a / b }')"
    done
    for srv in bare edge; do
      m_rps=$(for r in $(seq "$rounds"); do printf ' %s' "$(kv "${srv}_${mode}_r${r}_rps")"; done | median)
      m_p50=$(for r in $(seq "$rounds"); do printf ' %s' "$(kv "${srv}_${mode}_r${r}_p50_us")"; done | median)
      m_p99=$(for r in $(seq "$rounds"); do printf ' %s' "$(kv "${srv}_${mode}_r${r}_p99_us")"; done | median)
      m_cpu=$(for r in $(seq "$rounds"); do printf ' %s' "$(kv "${srv}_${mode}_r${r}_cpu_us_per_req")"; done | median)
      echo "${srv}_${mode}_rps=$m_rps ${srv}_${mode}_p50_us=$m_p50 ${srv}_${mode}_p99_us=$m_p99 ${srv}_${mode}_cpu_us_per_req=$m_cpu" | record >&2
    done
    echo "ratio_${mode}_rounds=$(echo $rs | tr ' ' ',') ratio_${mode}=$(echo "$rs" | median) cpu_ratio_${mode}_rounds=$(echo $cs | tr ' ' ',') cpu_ratio_${mode}=$(echo "$cs" | median)" | record >&2
    for srv in bare edge; do
      bc="" li="" si=""
      for r in $(seq "$rounds"); do
        bc+=",$(kv "${srv}_${mode}_r${r}_broker_cores")"
        li+=",$(kv "${srv}_${mode}_r${r}_cpu0_idle")"
        si+=",$(kv "${srv}_${mode}_r${r}_cpu1_idle")"
      done
      echo "${srv}_${mode}_broker_cores_rounds=${bc#,} ${srv}_${mode}_cpu0_idle_rounds=${li#,} ${srv}_${mode}_cpu1_idle_rounds=${si#,}" | record >&2
    done
  done

  half=$(( $(printf '%.0f' "$(kv edge_ka_rps)") / 2 ))
  log "constant rate at half the edge's keep-alive maximum: $half requests/s for ${dur}s, edge then bare, Poisson arrivals, then evenly in 1 ms bursts"
  # Each server's cores at that rate: half the requests is not half the CPU
  # (fewer requests per wake-up), and a server near its CPU's limit queues.
  # Two arrival patterns: Poisson (independent visitors, released within
  # ~50 us of their due times: the target's measurement), and the earlier
  # rounds' client, whose Go timer sleeps at least ~1.1 ms and so sends a
  # millisecond's requests at once, up to 1 ms late (as wrk2's 1 ms event
  # loop does): the same figure as every round before the fifteenth.
  for pattern in poisson 1ms; do
    pace=(-poisson)
    suffix=""
    if [[ $pattern == 1ms ]]; then
      pace=(-tick 0)
      suffix=_1ms
    fi
    for srv in edge bare; do
      pid=$edge addr=$edge_addr
      [[ $srv == bare ]] && pid=$bare addr=$bare_addr
      s0=$(snap "$pid")
      if [[ $profile == 1 && $pattern == poisson ]]; then
        # Where a request's CPU goes when the server is not saturated: more
        # wake-ups per request than under wrk's full load.
        admin=$edge_admin
        [[ $srv == bare ]] && admin=$bare_admin
        curl -fsS -o "$out/$srv-half-cpu.pprof" "http://$admin/debug/pprof/profile?seconds=$((dur - 2))" &
        prof_pid=$!
      fi
      # shellcheck disable=SC2086
      $load_cpu "$psbench" rate -url "http://$addr" -rate "$half" "${pace[@]}" -duration "${dur}s" -conns "$conns" \
        -label "${srv}_half$suffix" -timeline 1s -watch "server=$pid,broker=$kafka_pid" >"$out/rate-$srv$suffix.txt"
      s1=$(snap "$pid")
      if [[ $profile == 1 && $pattern == poisson ]]; then
        wait "$prof_pid" || true
      fi
      grep -v '^timeline' "$out/rate-$srv$suffix.txt" | record >&2
      # The client's latency includes its own waits for CPU 0, which it
      # shares with the broker: the broker's cores and CPU 0's idle time say
      # how much of a p99 the client's side may hold.
      usage "${srv}_half$suffix" "$s0" "$s1"
    done
  done
  if [[ -n $broker_cpu ]]; then
    taskset -a -p -c "0-$(($(nproc) - 1))" "$kafka_pid" >/dev/null
  fi
  sleep 1
  accepted=$(metric "$edge_admin" pixelstream_edge_hits_total)
  published=$(metric "$edge_admin" pixelstream_edge_published_total)
  dropped=$(metric "$edge_admin" pixelstream_edge_dropped_total)
  spooled=$(metric "$edge_admin" pixelstream_edge_spooled_total)
  echo "edge_hits_total=$accepted edge_published_total=$published edge_dropped_total=$dropped edge_spooled_total=$spooled" | record >&2
  # The publisher's batch histograms (write time, hits per write) and the
  # overflow counter: why hits went through the spool, if any did.
  curl -fsS "http://$edge_admin/metrics" >"$out/edge-load-metrics.txt" || true
  "$psbench" proc -pid "$edge" -prefix edge_ | record >&2
  "$psbench" proc -pid "$bare" -prefix bare_ | record >&2
  stop "$edge"
  stop "$bare"
fi

enricher_env() { # RAW ENRICHED GROUP: sets enr_env
  enr_env=(
    KAFKA_BROKERS="$brokers" RAW_TOPIC="$1" ENRICHED_TOPIC="$2" ENRICHER_GROUP_ID="$3"
    DEADLETTER_TOPIC=bench.deadletter ENRICHER_ADMIN_ADDR="$enr_admin" ENRICHER_GEOIP_CITY="$city"
    ENRICHER_SALT_TOPIC=bench.salts LOG_LEVEL=warn ENRICHER_SHUTDOWN_TIMEOUT=10s
  )
}

# --- 3. end to end latency -------------------------------------------------------------------
# The enricher first drains $e2e_warm realistic raw hits: a long-running
# enricher's User-Agent cache holds the common and the rare-but-recurring
# strings; a cold one parses nearly every User-Agent of the first minute
# (~1.6 ms each) and falls behind (docs/performance.md).
if ! skipped e2e; then
  log "end to end: warming the enricher with $e2e_warm raw hits, then $e2e_rate hits/s for ${e2e_dur}s"
  "$psbench" prefill -brokers "$brokers" -topic bench.e2e.raw -n "$e2e_warm" -seed 7 | sed 's/\([a-z_]*\)=/e2e_warm_\1=/g' | record >&2
  group=bench-e2e-$$-$RANDOM
  enricher_env bench.e2e.raw bench.e2e.enriched "$group"
  start enricher-e2e "" env "${enr_env[@]}" "$enricher_bin"
  enr=$last_pid
  start edge-e2e "" env "${edge_env[@]}" RAW_TOPIC=bench.e2e.raw "$edge_bin"
  edge=$last_pid
  wait_http "http://$edge_admin/readyz" 30
  wait_http "http://$enr_admin/readyz" 120
  "$psbench" drain -admin "http://$enr_admin" -pid "$enr" -n "$e2e_warm" -timeout 3m -label e2e_warm_ | grep 'events_per_s' | record >&2
  # Hits through the edge at the measured rate before measuring: the writer
  # and the enricher are connected, and the broker's JIT has compiled the
  # small-produce and small-fetch paths this rate takes. On a fresh JVM its
  # compiler threads used a quarter to a half of a core during the measured
  # seconds (JFR, top -H); a broker in service has long compiled them.
  "$psbench" rate -url "http://$edge_addr" -rate "$e2e_rate" -duration "${e2e_warmup}s" -conns 32 -label e2e_warmup >/dev/null
  deadline=$((SECONDS + 60))
  until (($(metric "$enr_admin" pixelstream_enricher_records_total) >= e2e_warm + e2e_rate * e2e_warmup * 95 / 100)); do
    ((SECONDS < deadline)) || die "the enricher did not process the warm-up hits within 60 s (see $out/enricher-e2e.log)"
    sleep 0.3
  done
  "$psbench" e2e -url "http://$edge_addr" -brokers "$brokers" -topic bench.e2e.enriched -rate "$e2e_rate" -duration "${e2e_dur}s" \
    -cpu-of "broker=$kafka_pid,edge=$edge,enricher=$enr" | record >&2
  "$psbench" proc -pid "$enr" -prefix e2e_enricher_ | record >&2
  "$psbench" proc -pid "$edge" -prefix e2e_edge_ | record >&2
  # Stage and batch histograms, to see where the latency goes.
  curl -fsS "http://$enr_admin/metrics" >"$out/enricher-e2e-metrics.txt" || true
  curl -fsS "http://$edge_admin/metrics" >"$out/edge-e2e-metrics.txt" || true
  awk '$1 == "pixelstream_edge_publish_batch_records_count" { n = $2 } $1 == "pixelstream_edge_publish_batch_records_sum" { r = $2 }
       $1 == "pixelstream_edge_publish_batch_duration_seconds_sum" { d = $2 }
       END { if (n > 0) printf "e2e_edge_batches=%d e2e_edge_batch_records=%.1f e2e_edge_batch_ms=%.1f\n", n, r / n, 1000 * d / n }' \
    "$out/edge-e2e-metrics.txt" | record >&2
  stop "$edge"
  stop "$enr"
fi

# --- 4. enricher throughput ------------------------------------------------------------------
# drainrun LABEL TOPIC ENRICHED N: a fresh enricher (new group, cold caches)
# drains N pre-filled raw hits.
drainrun() {
  local label=$1 topic=$2 enriched=$3 n=$4
  enricher_env "$topic" "$enriched" "bench-$label-$$-$RANDOM"
  start "enricher-$label" "" env "${enr_env[@]}" "$enricher_bin"
  local enr=$last_pid
  local prof_args=()
  if [[ $profile == 1 ]]; then
    prof_args=(-cpuprofile "$out/enricher-$label-cpu.pprof" -profile-seconds 10 -allocprofile "$out/enricher-$label-allocs.pprof")
  fi
  "$psbench" drain -admin "http://$enr_admin" -pid "$enr" -broker-pid "$kafka_pid" -n "$n" -timeout 5m -label "${label}_" "${prof_args[@]}" | record >&2
  # The batch, produce and commit histograms of the drain, for reading
  # where a run's time went (enricher-tput-metrics.txt, …-head-…).
  curl -fsS -H 'Accept-Encoding: identity' "http://$enr_admin/metrics" >"$out/enricher-$label-metrics.txt" || true
  stop "$enr"
}

if ! skipped enricher; then
  log "pre-filling bench.tput.raw with $prefill raw hits of the realistic mix"
  "$psbench" prefill -brokers "$brokers" -topic bench.tput.raw -n "$prefill" -seed 2 -compression "$prefill_codec" | record >&2
  log "enricher draining $prefill raw hits (realistic mix)"
  drainrun tput bench.tput.raw bench.tput.enriched "$prefill"
  if ((prefill_head > 0)); then
    log "enricher draining $prefill_head raw hits of the head-only mix (every User-Agent cached after its first hit)"
    "$psbench" prefill -brokers "$brokers" -topic bench.head.raw -n "$prefill_head" -seed 5 -unique 0 -rare 0 -compression "$prefill_codec" |
      sed 's/\([a-z_]*\)=/head_\1=/g' | record >&2
    drainrun head bench.head.raw bench.head.enriched "$prefill_head"
  fi
fi

log "stopping the broker"
scripts/kafka/stop.sh --port "$kport" >/dev/null 2>&1 || true
kafka_started=0

# --- summary -------------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "n/a"; else printf "%.2f", u / 1000 }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "" || v == "n/a") { print "n/a"; exit }
  ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0); print ok ? "met" : "MISSED" }'; }
row() { printf '%-58s %12s %10s %10s %10s\n' "$@"; }
trow() { printf '%-64s %14s %8s\n' "$@"; }
{
  echo
  echo "pixelstream load harness: $(date -u +%FT%TZ), $(nproc) CPUs; wrk/psbench on ${load_cpu:-any CPU}, bare and edge on ${srv_cpu:-any CPU}, broker on CPU ${broker_cpu:-any} during those runs"
  echo "load average (1, 5, 15 min) at start: $load_start; at end: $(loadavg) (other tenants of this machine show here)"
  row "run (medians of $rounds alternating rounds, ${conns} conns, ${dur}s)" "requests/s" "p50 ms" "p99 ms" "CPU us/req"
  for l in bare_ka edge_ka bare_close edge_close; do
    row "wrk $l" "$(kv ${l}_rps)" "$(ms "$(kv ${l}_p50_us)")" "$(ms "$(kv ${l}_p99_us)")" "$(kv ${l}_cpu_us_per_req)"
  done
  for l in edge_half bare_half edge_half_1ms bare_half_1ms; do
    row "constant rate $l ($(kv ${l}_target_rps)/s)" "$(kv ${l}_achieved_rps)" "$(kv ${l}_p50_ms)" "$(kv ${l}_p99_ms)" ""
  done
  row "end to end at $(kv e2e_target_rps)/s (matched $(kv e2e_matched)/$(kv e2e_ok))" "$(kv e2e_achieved_rps)" "$(kv e2e_p50_ms)" "$(kv e2e_p99_ms)" ""
  echo "end to end: machine steal $(kv e2e_steal_cores) cores while sending; HTTP p50/p99 $(kv e2e_http_p50_ms)/$(kv e2e_http_p99_ms) ms; p99 per second: median $(kv e2e_second_p99_median_ms) ms, worst $(kv e2e_second_p99_worst_ms) ms, $(kv e2e_seconds_p99_over_100ms) of $(kv e2e_seconds) seconds over 100 ms"
  echo "          cores while sending: broker $(kv e2e_broker_cores), edge $(kv e2e_edge_cores), enricher $(kv e2e_enricher_cores), machine idle $(kv e2e_idle_cores); edge produce requests $(kv e2e_edge_batches) of $(kv e2e_edge_batch_records) records, $(kv e2e_edge_batch_ms) ms each on average (warm-up included)"
  for l in edge bare edge_1ms bare_1ms; do
    # The second with the worst latency, and who had the CPUs in it: the
    # server's CPU (1) busy means the server held the requests; CPU 0 busy
    # with the server's idle, the client (or the broker beside it) did.
    worst=$(grep '^timeline' "$out/rate-$l.txt" 2>/dev/null | sort -t= -k5 -g | tail -n1 |
      sed -E 's/^timeline t= *//; s/ +/ /g')
    [[ -n $worst ]] && echo "constant rate, $l: worst second at $worst"
  done
  for sfx in "" _1ms; do
    echo "constant rate at half the edge's maximum${sfx:+ (1 ms bursts)}: server cores edge $(kv edge_half${sfx}_server_cores), bare $(kv bare_half${sfx}_server_cores); broker cores $(kv edge_half${sfx}_broker_cores) | $(kv bare_half${sfx}_broker_cores); idle cores of CPU 0 $(kv edge_half${sfx}_cpu0_idle) | $(kv bare_half${sfx}_cpu0_idle), of CPU 1 $(kv edge_half${sfx}_cpu1_idle) | $(kv bare_half${sfx}_cpu1_idle); client's own p99 $(kv edge_half${sfx}_wait_p99_ms) | $(kv bare_half${sfx}_wait_p99_ms) ms (edge | bare)"
  done
  echo "per-round edge/bare ratios: keep-alive $(kv ratio_ka_rounds), close $(kv ratio_close_rounds); CPU-per-request bare/edge: keep-alive $(kv cpu_ratio_ka_rounds), close $(kv cpu_ratio_close_rounds)"
  echo "          per round, bare | edge: broker cores keep-alive $(kv bare_ka_broker_cores_rounds) | $(kv edge_ka_broker_cores_rounds), close $(kv bare_close_broker_cores_rounds) | $(kv edge_close_broker_cores_rounds)"
  echo "          idle cores of CPU 0 (load generator, broker) keep-alive $(kv bare_ka_cpu0_idle_rounds) | $(kv edge_ka_cpu0_idle_rounds), close $(kv bare_close_cpu0_idle_rounds) | $(kv edge_close_cpu0_idle_rounds); of CPU 1 (server) keep-alive $(kv bare_ka_cpu1_idle_rounds) | $(kv edge_ka_cpu1_idle_rounds), close $(kv bare_close_cpu1_idle_rounds) | $(kv edge_close_cpu1_idle_rounds)"
  echo "enricher, realistic mix: $(kv tput_events_per_s) events/s over $(kv tput_window_s) s, $(kv tput_cores_used) cores, $(kv tput_events_per_cpu_s) events per CPU-second; second half $(kv tput_second_half_events_per_s)/s; UA cache hit rate $(kv tput_ua_cache_hit_rate) ($(kv tput_ua_cache_misses) misses)"
  echo "          stage seconds: enrich $(kv tput_stage_enrich_s), produce $(kv tput_stage_produce_s), commit $(kv tput_stage_commit_s); broker $(kv tput_broker_cores) cores, machine idle $(kv tput_idle_cores), steal $(kv tput_steal_cores) cores"
  echo "          broker threads (cores): $(kv tput_broker_threads)"
  echo "enricher, head-only mix: $(kv head_events_per_s) events/s, $(kv head_cores_used) cores, $(kv head_events_per_cpu_s) events per CPU-second, UA cache hit rate $(kv head_ua_cache_hit_rate)"
  echo "          stage seconds: enrich $(kv head_stage_enrich_s), produce $(kv head_stage_produce_s), commit $(kv head_stage_commit_s); broker $(kv head_broker_cores) cores, machine idle $(kv head_idle_cores), steal $(kv head_steal_cores) cores"
  echo
  trow "target" "measured" "verdict"
  trow "edge/bare requests/s, keep-alive >= 0.7 (median ratio)" "$(kv ratio_ka)" "$(verdict "$(kv ratio_ka)" ">=" 0.7)"
  trow "  CPU per request, bare/edge, keep-alive" "$(kv cpu_ratio_ka)" ""
  trow "edge/bare requests/s, new connection per hit >= 0.9" "$(kv ratio_close)" "$(verdict "$(kv ratio_close)" ">=" 0.9)"
  trow "  CPU per request, bare/edge, new connection per hit" "$(kv cpu_ratio_close)" ""
  trow "edge p99 at half its max rate < 5 ms (ms)" "$(kv edge_half_p99_ms)" "$(verdict "$(kv edge_half_p99_ms)" "<" 5)"
  trow "  bare server p99 at the same rate (noise floor, ms)" "$(kv bare_half_p99_ms)" ""
  trow "  edge | bare p99 in 1 ms bursts (earlier rounds' client, ms)" "$(kv edge_half_1ms_p99_ms) | $(kv bare_half_1ms_p99_ms)" ""
  trow "enricher events/s >= 100000 (realistic mix, real broker)" "$(kv tput_events_per_s)" "$(verdict "$(kv tput_events_per_s)" ">=" 100000)"
  trow "end to end p99 at ${e2e_rate}/s < 100 ms (ms)" "$(kv e2e_p99_ms)" "$(verdict "$(kv e2e_p99_ms)" "<" 100)"
  trow "edge peak RSS (VmHWM) < 100 MiB" "$(kv edge_vmhwm_mib)" "$(verdict "$(kv edge_vmhwm_mib)" "<" 100)"
  trow "enricher peak RSS (VmHWM) < 300 MiB, City db mapped (realistic run)" "$(kv tput_enricher_vmhwm_mib)" "$(verdict "$(kv tput_enricher_vmhwm_mib)" "<" 300)"
  trow "  enricher VmHWM, head-only run / e2e run" "$(kv head_enricher_vmhwm_mib) / $(kv e2e_enricher_vmhwm_mib)" ""
  echo "edge: hits $(kv edge_hits_total), published $(kv edge_published_total), dropped $(kv edge_dropped_total), through the disk spool $(kv edge_spooled_total); broker CPU during edge keep-alive round 1: $(kv edge_ka_r1_broker_cores) cores"
  echo "raw results: $results; took $((SECONDS - t_start)) s"
} | tee "$out/summary.txt"
