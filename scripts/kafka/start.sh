#!/usr/bin/env bash
# Start a real single-node Apache Kafka 4.x broker (KRaft combined mode) from
# Maven Central jars, in the background, for development and tests.
#
# Usage: scripts/kafka/start.sh [--data-dir DIR] [--port N] [--controller-port N]
#                               [--version V] [--reuse] [--timeout SECONDS]
#
#   --data-dir DIR      keep the broker's data in DIR (env KAFKA_DATA_DIR). DIR holds
#                       server.properties, cluster.id and kraft-combined-logs/. A DIR
#                       that was formatted before is reused as is (same cluster id, same
#                       topics and records): stop.sh, then start.sh --data-dir DIR again,
#                       restarts the same broker. Use the same ports with the same DIR.
#                       Without it, every start gets a fresh temporary data dir that
#                       stop.sh deletes.
#   --port N            PLAINTEXT port on 127.0.0.1 (env KAFKA_PORT, default 19092).
#   --controller-port N CONTROLLER port (env KAFKA_CONTROLLER_PORT, default port+1).
#   --version V         org.apache.kafka:kafka_2.13 version (env KAFKA_VERSION, default 4.1.1).
#   --reuse             if a broker started by this script is already running on this
#                       port and answers (and --data-dir, if given, is the one it uses),
#                       keep it and just print its address (env KAFKA_REUSE=1).
#                       Without --reuse a running broker is stopped and replaced.
#   --timeout SECONDS   how long to wait for the broker to answer (env KAFKA_START_TIMEOUT, 90).
#
# Other environment:
#   PIXELSTREAM_CACHE     cache root (default ~/.cache/pixelstream). Jars are cached in
#                         $PIXELSTREAM_CACHE/kafka/<version>/libs; mvn runs only when that
#                         directory is missing.
#   KAFKA_RUN_DIR         where the pid file and log live
#                         (default $PIXELSTREAM_CACHE/kafka/run/<port>): kafka.pid, kafka.log
#                         (the previous start's log is kept as kafka.log.1), data_dir.
#   KAFKA_LOG_LEVEL       root log level of the broker (default WARN).
#   KAFKA_HEAP_OPTS       JVM heap (default "-Xms1g -Xmx1g", kafka-server-start.sh's own).
#                         Not less: the log cleaner's 128 MiB dedupe buffer lives on the
#                         heap, and with 512 MiB that keeps G1 above its marking threshold, so
#                         every request over 512 KiB (a humongous allocation) starts a
#                         concurrent mark: 78 cycles and ~0.2 cores during one enricher drain.
#   KAFKA_EXTRA_PROPERTIES  extra server.properties lines appended verbatim.
#
# Progress goes to stderr. stdout gets exactly two lines, the last being the address:
#   KAFKA_DATA_DIR=/path/to/data
#   KAFKA_BROKERS=127.0.0.1:19092
# so `eval "$(scripts/kafka/start.sh)"` or `... | tail -n1` both work.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "kafka/start.sh: error: $*" >&2; exit 1; }
log() { echo "kafka/start.sh: $*" >&2; }

data_dir=${KAFKA_DATA_DIR:-}
port=${KAFKA_PORT:-19092}
controller_port=${KAFKA_CONTROLLER_PORT:-}
version=${KAFKA_VERSION:-4.1.1}
reuse=${KAFKA_REUSE:-0}
timeout=${KAFKA_START_TIMEOUT:-90}

while [[ $# -gt 0 ]]; do
  case $1 in
    --data-dir) data_dir=${2:?--data-dir needs a directory}; shift 2 ;;
    --data-dir=*) data_dir=${1#*=}; shift ;;
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --controller-port) controller_port=${2:?--controller-port needs a number}; shift 2 ;;
    --controller-port=*) controller_port=${1#*=}; shift ;;
    --version) version=${2:?--version needs a version}; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    --reuse) reuse=1; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
controller_port=${controller_port:-$((port + 1))}
[[ $port =~ ^[0-9]+$ && $controller_port =~ ^[0-9]+$ ]] || die "ports must be numbers (got $port, $controller_port)"
[[ $port != "$controller_port" ]] || die "--port and --controller-port must differ"

cache=${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}
libs=$cache/kafka/$version/libs
run_dir=${KAFKA_RUN_DIR:-$cache/kafka/run/$port}
pid_file=$run_dir/kafka.pid
log_file=$run_dir/kafka.log
brokers=127.0.0.1:$port
t0=$SECONDS

# --- prerequisites -----------------------------------------------------------------
command -v java >/dev/null 2>&1 ||
  die "java not found on PATH: Kafka $version needs a Java 17+ runtime (Debian: apt-get install -y openjdk-17-jre-headless)"
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p')
[[ -n $java_major && $java_major -ge 17 ]] ||
  die "Kafka $version needs Java 17 or newer, found: $(java -version 2>&1 | head -n1)"

# tcp_open PORT: something accepts connections on 127.0.0.1:PORT.
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# api_versions_ok PORT: the broker answers a Kafka ApiVersions v0 request
# (it only does once it has started request processing).
api_versions_ok() {
  timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1
    # size=12, api_key=18 (ApiVersions), api_version=0, correlation_id=1, client_id="ps"
    printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02ps" >&3
    n=$(head -c 4 <&3 | od -An -tu1 | tr -s " ")
    [[ -n ${n// /} && ${n// /} != 0000 ]]
  ' 2>/dev/null
}

# group_coordinator_ready PORT: a FindCoordinator v1 request for a group gets error
# code 0. The first such request makes the broker create __consumer_offsets; until
# then it answers COORDINATOR_NOT_AVAILABLE (15) and clients back off (kafka-go
# for ~5 s), so start.sh asks first and the tests' first consumer group joins at once.
group_coordinator_ready() {
  timeout 3 bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$1"' || exit 1
    # size=16, api_key=10 (FindCoordinator), api_version=1, correlation_id=2,
    # client_id="ps", key="w", key_type=0 (group)
    printf "\x00\x00\x00\x10\x00\x0a\x00\x01\x00\x00\x00\x02\x00\x02ps\x00\x01w\x00" >&3
    # size(4) correlation_id(4) throttle_time_ms(4) error_code(2)
    r=$(head -c 14 <&3 | od -An -tu1 | tr -s " ")
    [[ $r == *" 0 0 0 2 "*" 0 0" ]]
  ' 2>/dev/null
}

# broker_ready: the broker serves metadata listing itself (kcat if installed,
# else a raw ApiVersions round trip).
broker_ready() {
  if command -v kcat >/dev/null 2>&1; then
    grep -q ' 1 brokers:' < <(timeout 5 kcat -L -b "$brokers" -m 3 2>/dev/null)
  else
    tcp_open "$port" && api_versions_ok "$port"
  fi
}

# our_broker_pid: pid from the pid file if that process is alive and is kafka.Kafka.
our_broker_pid() {
  local pid
  [[ -f $pid_file ]] || return 1
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q 'kafka\.Kafka' < <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  echo "$pid"
}

# --- an already running broker: reuse it or replace it -----------------------------
if pid=$(our_broker_pid); then
  running_data=$(cat "$run_dir/data_dir" 2>/dev/null || true)
  want_data=""
  [[ -n $data_dir ]] && want_data=$(mkdir -p "$data_dir" && cd "$data_dir" && pwd)
  if [[ $reuse == 1 ]] && { [[ -z $want_data ]] || [[ $want_data == "$running_data" ]]; } && broker_ready; then
    log "reusing the broker already running (pid $pid, data $running_data)"
    echo "KAFKA_DATA_DIR=$running_data"
    echo "KAFKA_BROKERS=$brokers"
    exit 0
  fi
  log "a broker from a previous start is running (pid $pid): stopping it to start a new one"
  KAFKA_RUN_DIR=$run_dir "$here/stop.sh" --port "$port" >&2
fi

for p in "$port" "$controller_port"; do
  if tcp_open "$p"; then
    die "127.0.0.1:$p is already in use by another process (not started by this script with KAFKA_RUN_DIR=$run_dir); pick another --port or stop it"
  fi
done

# --- jars (cached) -------------------------------------------------------------------
if [[ ! -f $libs/kafka_2.13-$version.jar ]]; then
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found on PATH and Kafka $version jars are not cached in $libs (Debian: apt-get install -y maven)"
  log "downloading Kafka $version jars from Maven Central into $libs"
  mkdir -p "$(dirname "$libs")"
  tmp_libs=$(mktemp -d "$(dirname "$libs")/libs.tmp.XXXXXX")
  # (Debian's Maven 3.8 prints bare colour resets even with -B -q: strip them.)
  if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" \
        -Dkafka.version="$version" -DoutputDirectory="$tmp_libs" \
        dependency:copy-dependencies 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
    rm -rf "$tmp_libs"
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$version (is Maven Central reachable? is $version a real version?)"
  fi
  [[ -f $tmp_libs/kafka_2.13-$version.jar ]] || { rm -rf "$tmp_libs"; die "mvn did not produce kafka_2.13-$version.jar"; }
  # Atomic publish; a concurrent start.sh may have won the race, which is fine.
  mv -T "$tmp_libs" "$libs" 2>/dev/null || rm -rf "$tmp_libs"
  log "jars cached ($(ls "$libs" | wc -l) files, $((SECONDS - t0)) s)"
fi

# --- data dir, configuration, storage format ----------------------------------------
ephemeral=0
if [[ -z $data_dir ]]; then
  data_dir=$(mktemp -d "${TMPDIR:-/tmp}/pixelstream-kafka.XXXXXX")
  ephemeral=1
fi
mkdir -p "$data_dir"
data_dir=$(cd "$data_dir" && pwd)
log_dir=$data_dir/kraft-combined-logs
props=$data_dir/server.properties

{
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" -e "s|@LOG_DIR@|$log_dir|g" \
    "$here/server.properties.in"
  if [[ -n ${KAFKA_EXTRA_PROPERTIES:-} ]]; then
    echo "# KAFKA_EXTRA_PROPERTIES"
    printf '%s\n' "$KAFKA_EXTRA_PROPERTIES"
  fi
} >"$props"

java_tool() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -cp "$libs/*" "$@"
}

if [[ -f $log_dir/meta.properties ]]; then
  [[ -f $data_dir/cluster.id ]] || die "$data_dir was formatted but has no cluster.id file"
  cluster_id=$(cat "$data_dir/cluster.id")
  grep -q "^cluster.id=$cluster_id\$" "$log_dir/meta.properties" ||
    die "cluster.id in $data_dir/cluster.id does not match $log_dir/meta.properties"
  log "reusing data dir $data_dir (cluster id $cluster_id)"
else
  if [[ -s $data_dir/cluster.id ]]; then
    cluster_id=$(cat "$data_dir/cluster.id")
  else
    cluster_id=$(java_tool kafka.tools.StorageTool random-uuid | tail -n1)
    [[ $cluster_id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka.tools.StorageTool random-uuid printed '$cluster_id'"
    echo "$cluster_id" >"$data_dir/cluster.id"
  fi
  log "formatting $log_dir (cluster id $cluster_id)"
  java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --standalone >&2 ||
    die "kafka.tools.StorageTool format failed for $data_dir"
fi

# --- launch ----------------------------------------------------------------------------
mkdir -p "$run_dir"
[[ -f $log_file ]] && mv -f "$log_file" "$log_file.1"
echo "$data_dir" >"$run_dir/data_dir"
if [[ $ephemeral == 1 ]]; then touch "$run_dir/ephemeral"; else rm -f "$run_dir/ephemeral"; fi
rm -f "$pid_file"

# setsid: the broker outlives this script and is not hit by the caller's Ctrl-C.
# The inner bash writes its own pid and then execs java, so the pid file names the JVM.
# shellcheck disable=SC2086
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pid_file" \
  java ${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g} \
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
  -Dlog4j2.shutdownHookEnabled=false \
  -Dlog4j2.configurationFile="$here/log4j2.properties" \
  -Dkafka.root.log.level="${KAFKA_LOG_LEVEL:-WARN}" \
  -cp "$libs/*" kafka.Kafka "$props" \
  >"$log_file" 2>&1 </dev/null &

for _ in $(seq 50); do [[ -s $pid_file ]] && break; sleep 0.1; done
pid=$(cat "$pid_file" 2>/dev/null) || die "broker did not write its pid file $pid_file"

log "started Kafka $version (pid $pid, log $log_file), waiting up to ${timeout}s for $brokers"
deadline=$((SECONDS + timeout))
until broker_ready; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "----- last lines of $log_file -----" >&2
    tail -n 40 "$log_file" >&2 || true
    rm -f "$pid_file"
    die "the broker exited during startup (see $log_file)"
  fi
  if ((SECONDS >= deadline)); then
    echo "----- last lines of $log_file -----" >&2
    tail -n 40 "$log_file" >&2 || true
    KAFKA_RUN_DIR=$run_dir "$here/stop.sh" --port "$port" >&2 || true
    die "the broker did not answer on $brokers within ${timeout}s"
  fi
  sleep 0.3
done

warm_deadline=$((SECONDS + 15))
until group_coordinator_ready "$port"; do
  if ((SECONDS >= warm_deadline)); then
    log "warning: the group coordinator is still not available (first consumer group joins may be slow)"
    break
  fi
  sleep 0.2
done

log "broker ready on $brokers in $((SECONDS - t0)) s (data $data_dir$([[ $ephemeral == 1 ]] && echo ', deleted by stop.sh'))"
echo "KAFKA_DATA_DIR=$data_dir"
echo "KAFKA_BROKERS=$brokers"
