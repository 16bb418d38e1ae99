// Package faults runs the real edge and enricher binaries against a real
// Apache Kafka broker of its own and breaks things while hits flow: the
// broker stopped under load, the enricher killed with SIGKILL, the edge sent
// SIGTERM with hits queued, the edge's spool disk filled up. Each test counts
// hits at both ends, by a unique page path per hit (the edge assigns the event
// ids): answered 200 with the GIF by the edge versus arrived in the enriched
// topic (read with kcat, an independent client), and logs one summary line:
// sent, accepted, arrived, lost, duplicates, outage.
//
// They are slow (about three minutes) and intrusive (they kill processes and
// mount a tmpfs), so beside the integration switch (PIXELSTREAM_INTEGRATION=1,
// kafkatest.Integration) they run only with PIXELSTREAM_FAULTS=1, which
// scripts/test-faults.sh sets: the race-enabled `go test ./...` phase of
// `make test` skips them without building anything, and its fault phase runs
// them.
//
// The tests stop and restart their broker, so they never use the KAFKA_BROKERS
// broker of `make test`: they start their own with scripts/kafka/start.sh on
// FAULTS_KAFKA_PORT (default 19592, controller port + 1) with a data dir of
// their own, restarted on the same data dir. They are integration tests
// (PIXELSTREAM_INTEGRATION=1) and need Java 17 and Maven (Kafka jars are cached
// in PIXELSTREAM_CACHE as for `make test`); under CI=true a missing
// prerequisite fails instead of skipping.
//
// The binaries are built once, without the race detector by default: these
// tests are about delivery under timing (queues filling, deadlines passing,
// a 200 hits/s load on a shared 2-core machine beside a JVM), and the race
// detector's 2-10x CPU cost changes exactly those timings. Data races are the
// job of the race-enabled unit, integration and e2e tests of `make test`.
// FAULTS_RACE=1 builds them with -race anyway. FAULTS_LOGS=1 prints the
// services' output even when a test passes. FAULTS_NO_TMPFS=1 makes the
// spool-full test use -spool-max-bytes as its quota instead of a tmpfs.
//
//	make test-faults
//	cd test && PIXELSTREAM_INTEGRATION=1 PIXELSTREAM_FAULTS=1 go test -v -count=1 -timeout 10m ./faults/
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bins holds the service binaries built by TestMain.
var bins struct {
	edge, enricher string
	race           bool
	edgeOptions    string // `edge -print-options`
}

// faultsEnabled is the switch of this package, on top of the integration switch.
func faultsEnabled() bool {
	return os.Getenv("PIXELSTREAM_FAULTS") == "1" && os.Getenv("PIXELSTREAM_INTEGRATION") == "1"
}

func TestMain(m *testing.M) {
	if !faultsEnabled() {
		os.Exit(m.Run()) // every test skips (or fails under CI=true without the integration switch)
	}
	dir, err := os.MkdirTemp("", "pixelstream-faults-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.race = os.Getenv("FAULTS_RACE") == "1"
	bins.edge, bins.enricher = filepath.Join(dir, "edge"), filepath.Join(dir, "enricher")
	for _, b := range []struct{ out, pkg string }{{bins.edge, "../../services/edge"}, {bins.enricher, "../../services/enricher"}} {
		args := []string{"build", "-o", b.out}
		if bins.race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = b.pkg
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	if out, err := exec.Command(bins.edge, "-print-options").Output(); err == nil {
		bins.edgeOptions = string(out)
	}
	code := m.Run()
	stopSharedBroker()
	os.RemoveAll(dir)
	os.Exit(code)
}

// edgeHas reports whether the edge binary has the option (e.g. "-spool-dir").
func edgeHas(flag string) bool {
	return strings.Contains(bins.edgeOptions, "`"+flag+"`")
}
