#!/usr/bin/env bash
# Fault-injection tests (`make test-faults`, and a phase of `make test`):
# the real edge and enricher binaries under a steady pixel load while the
# broker is stopped for 30 s, the enricher is killed with SIGKILL, the edge
# gets SIGTERM with hits queued, and the edge's spool disk fills up. Each
# test prints one `FAULT <name>: sent=… accepted=… arrived=… lost=…
# duplicates=… outage=…` line; they are repeated at the end.
#
# The tests start and stop a real Kafka broker of their own (they stop it
# mid-test, so never the KAFKA_BROKERS one) with scripts/kafka/start.sh on
# 127.0.0.1:${FAULTS_KAFKA_PORT:-19592} (controller port + 1), a temporary
# data dir and the usual jar cache (PIXELSTREAM_CACHE, KAFKA_VERSION,
# KAFKA_HEAP_OPTS are honoured). Needs Java 17, Maven and kcat; without them
# the tests skip, and under CI=true they fail. The spool-full test mounts a
# 2 MiB tmpfs when run as root (else it uses -spool-max-bytes as the quota).
#
# Environment: FAULTS_RACE=1 builds the services with -race; FAULTS_LOGS=1
# prints the services' output; FAULTS_RUN=regexp selects tests (go test -run);
# FAULTS_NO_TMPFS=1 uses -spool-max-bytes instead of mounting a tmpfs.
set -euo pipefail
cd "$(dirname "$0")/../test"

export PIXELSTREAM_INTEGRATION=1 PIXELSTREAM_FAULTS=1
out=$(mktemp "${TMPDIR:-/tmp}/pixelstream-faults.XXXXXX")
trap 'rm -f "$out"' EXIT

status=0
go test -v -count=1 -timeout 10m -run "${FAULTS_RUN:-.}" ./faults/ 2>&1 | tee "$out" || status=$?

echo
echo "fault test figures:"
grep -o 'FAULT .*' "$out" || echo "  (none: tests skipped or failed before counting)"
exit "$status"
