#!/usr/bin/env bash
# Stop the broker started by scripts/kafka/start.sh: SIGTERM (a clean shutdown that
# flushes and closes the logs), then SIGKILL if it is still alive after the timeout.
#
# Usage: scripts/kafka/stop.sh [--port N] [--timeout SECONDS] [--kill] [--keep-data]
#
#   --port N           the port it was started with (env KAFKA_PORT, default 19092);
#                      selects the run dir $PIXELSTREAM_CACHE/kafka/run/<port>
#                      (or KAFKA_RUN_DIR, as for start.sh).
#   --timeout SECONDS  grace period before SIGKILL (env KAFKA_STOP_TIMEOUT, default 30).
#   --kill             SIGKILL at once: a crash, for fault tests (data written with
#                      acks=all survives it; unflushed segments are recovered on restart).
#   --keep-data        keep a temporary data dir (one start.sh made because it got no
#                      --data-dir) instead of deleting it (env KAFKA_KEEP_DATA=1).
#                      A --data-dir given to start.sh is never deleted.
#
# Exits 0 when no broker is running (nothing to do) or once it is gone.
set -euo pipefail

die() { echo "kafka/stop.sh: error: $*" >&2; exit 1; }
log() { echo "kafka/stop.sh: $*" >&2; }

port=${KAFKA_PORT:-19092}
timeout=${KAFKA_STOP_TIMEOUT:-30}
keep=${KAFKA_KEEP_DATA:-0}
kill_now=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --port) port=${2:?--port needs a number}; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --kill) kill_now=1; shift ;;
    --keep-data) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done

cache=${PIXELSTREAM_CACHE:-$HOME/.cache/pixelstream}
run_dir=${KAFKA_RUN_DIR:-$cache/kafka/run/$port}
pid_file=$run_dir/kafka.pid

# alive PID: running and not a zombie (an orphaned JVM may wait to be reaped).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [[ $state != Z && $state != X ]]
}

cleanup_data() {
  if [[ -f $run_dir/ephemeral && $keep != 1 ]]; then
    local d
    d=$(cat "$run_dir/data_dir" 2>/dev/null || true)
    # Only ever delete what start.sh created with mktemp.
    if [[ -n $d && $(basename "$d") == pixelstream-kafka.* && -d $d ]]; then
      rm -rf "$d"
      log "deleted temporary data dir $d"
    fi
    rm -f "$run_dir/ephemeral"
  fi
}

pid=$(cat "$pid_file" 2>/dev/null || true)
if [[ ! $pid =~ ^[0-9]+$ ]] || ! alive "$pid"; then
  log "no broker running (pid file $pid_file)"
  rm -f "$pid_file"
  cleanup_data
  exit 0
fi
if ! grep -q 'kafka\.Kafka' < <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null); then
  log "pid $pid from $pid_file is not a Kafka broker any more (stale pid file): not touching it"
  rm -f "$pid_file"
  cleanup_data
  exit 0
fi

t0=$SECONDS
if [[ $kill_now == 1 ]]; then
  log "SIGKILL broker pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
else
  log "SIGTERM broker pid $pid (SIGKILL after ${timeout}s)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    log "still alive after ${timeout}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
alive "$pid" && die "pid $pid survived SIGKILL"
rm -f "$pid_file"
log "broker stopped in $((SECONDS - t0)) s"
cleanup_data
