#!/usr/bin/env bash
# The one test command (`make test`): formatting, vet, unit tests with the
# race detector, integration and end-to-end tests against a real Apache Kafka
# broker, a short fuzz pass, and compose-file validation.
#
# Broker: KAFKA_BROKERS if set; otherwise a real Kafka 4.x broker started by
# scripts/kafka/start.sh (Java 17 + Maven, jars cached) and stopped on exit.
# Without Java or Maven it falls back to the in-process kfake broker and says
# so; under CI=true a missing real broker is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES=(pkg services/edge services/enricher test)
FUZZTIME=${FUZZTIME:-5s}
phase() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

phase "gofmt"
unformatted=$(gofmt -l "${MODULES[@]}")
if [[ -n $unformatted ]]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

phase "go vet"
for m in "${MODULES[@]}"; do (cd "$m" && go vet ./...); done

phase "Kafka broker"
started_broker=0
if [[ -z ${KAFKA_BROKERS:-} ]]; then
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    out=$(scripts/kafka/start.sh)
    eval "$out"
    export KAFKA_BROKERS
    started_broker=1
    trap 'scripts/kafka/stop.sh >/dev/null 2>&1 || true' EXIT
    echo "real Apache Kafka broker at $KAFKA_BROKERS"
  elif [[ ${CI:-} == true ]]; then
    echo "CI=true but Java or Maven is missing: a real Kafka broker is required in CI" >&2
    exit 1
  else
    echo "WARNING: Java or Maven missing: integration tests use the in-process kfake broker, not a real one" >&2
  fi
else
  echo "using KAFKA_BROKERS=$KAFKA_BROKERS"
fi
export PIXELSTREAM_INTEGRATION=1

phase "GeoLite2 database"
if city=$(scripts/geoip/fetch.sh | tail -n1) && [[ -f $city ]]; then
  export GEOIP_CITY_DB=$city
  echo "GEOIP_CITY_DB=$GEOIP_CITY_DB"
elif [[ ${CI:-} == true ]]; then
  echo "CI=true but the GeoLite2 database could not be fetched" >&2; exit 1
else
  echo "WARNING: no GeoLite2 database: real-data geo tests will skip" >&2
fi

phase "unit and integration tests (race detector)"
for m in "${MODULES[@]}"; do
  (cd "$m" && go test -race -count=1 -timeout 15m ./...)
done

phase "User-Agent prefilter against plain uap-go, whole corpus (without -race, where a plain parse takes 20 ms)"
(cd services/enricher && go test -count=1 -run '^TestPrefilterMatchesUAP$' -v ./internal/device/)

phase "fault tests (own broker on 127.0.0.1:${FAULTS_KAFKA_PORT:-19592}: outage, kill -9, SIGTERM, spool full)"
scripts/test-faults.sh

phase "short fuzz pass ($FUZZTIME per target)"
scripts/fuzz.sh "$FUZZTIME"

phase "docker-compose config"
if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml is valid"
elif [[ ${CI:-} == true ]]; then
  echo "CI=true but docker-compose is missing" >&2; exit 1
else
  echo "docker-compose not installed: compose file not validated"
fi

phase "all checks passed"
