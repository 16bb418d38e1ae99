package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// broker is this package's own real Kafka broker (scripts/kafka/start.sh),
// shared by the tests, which run one after another. Tests stop it (cleanly or
// with SIGKILL) and start it again on the same port and data dir, so it comes
// back with the same topics, records and committed offsets.
type broker struct {
	port    int
	dataDir string
	runDir  string // pid file and log, private to this package
	addr    string

	mu   sync.Mutex
	up   bool
	base string // temp dir holding dataDir and runDir
}

var (
	sharedOnce   sync.Once
	sharedBroker *broker
	sharedErr    error
)

const scripts = "../../scripts/kafka/"

// faultBroker returns the running shared broker, starting it on first use.
// It skips (or fails under CI=true) when the integration switch is off or
// Java/Maven are missing.
func faultBroker(t *testing.T) *broker {
	t.Helper()
	kafkatest.Integration(t)
	if !faultsEnabled() {
		t.Skip("fault tests: set PIXELSTREAM_FAULTS=1 too, or run `make test-faults` (slow: they stop brokers and kill services)")
	}
	for _, tool := range []string{"java", "mvn", "kcat"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found but CI=true: the fault tests need Java 17, Maven and kcat for a real Kafka broker", tool)
			}
			t.Skipf("%s not found: the fault tests need Java 17, Maven and kcat for a real Kafka broker", tool)
		}
	}
	sharedOnce.Do(func() {
		port := 19592
		if p := os.Getenv("FAULTS_KAFKA_PORT"); p != "" {
			var err error
			if port, err = strconv.Atoi(p); err != nil {
				sharedErr = fmt.Errorf("FAULTS_KAFKA_PORT=%q: %v", p, err)
				return
			}
		}
		base, err := os.MkdirTemp("", "pixelstream-faults-kafka")
		if err != nil {
			sharedErr = err
			return
		}
		b := &broker{port: port, base: base, dataDir: filepath.Join(base, "data"), runDir: filepath.Join(base, "run"),
			addr: "127.0.0.1:" + strconv.Itoa(port)}
		sharedBroker = b
		start := time.Now()
		if err := b.start(); err != nil {
			sharedErr = err
			return
		}
		fmt.Fprintf(os.Stderr, "faults: own Kafka broker on %s (data %s) ready in %.1fs\n", b.addr, b.dataDir, time.Since(start).Seconds())
	})
	if sharedErr != nil {
		t.Fatalf("starting the fault tests' Kafka broker: %v", sharedErr)
	}
	b := sharedBroker
	// Whatever a test did to it, the next test gets a running broker.
	t.Cleanup(func() {
		if !b.isUp() {
			if err := b.start(); err != nil {
				t.Errorf("restarting the broker after the test: %v", err)
			}
		}
	})
	if !b.isUp() {
		if err := b.start(); err != nil {
			t.Fatalf("starting the broker: %v", err)
		}
	}
	return b
}

func (b *broker) isUp() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up
}

func (b *broker) brokers() []string { return []string{b.addr} }

// env is the scripts' environment: the caller's (PIXELSTREAM_CACHE,
// KAFKA_VERSION, KAFKA_HEAP_OPTS, ...) with a private run dir.
func (b *broker) env() []string {
	extra := os.Getenv("KAFKA_EXTRA_PROPERTIES")
	if extra != "" {
		extra += "\n"
	}
	return append(os.Environ(),
		"KAFKA_RUN_DIR="+b.runDir,
		// After a SIGKILL the controller would otherwise keep the dead
		// broker's registration for ~9 s and refuse the restarted one.
		"KAFKA_EXTRA_PROPERTIES="+extra+"broker.session.timeout.ms=4000",
	)
}

// start runs start.sh on the broker's port and data dir and waits until it answers.
func (b *broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cmd := exec.Command(scripts+"start.sh", "--port", strconv.Itoa(b.port), "--controller-port", strconv.Itoa(b.port+1),
		"--data-dir", b.dataDir, "--timeout", "120")
	cmd.Env = b.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start.sh: %v\n%s%s", err, errb.String(), b.logTail())
	}
	if !strings.Contains(out.String(), "KAFKA_BROKERS="+b.addr) {
		return fmt.Errorf("start.sh printed %q, want KAFKA_BROKERS=%s", out.String(), b.addr)
	}
	b.up = true
	return nil
}

// stop stops the broker: SIGTERM and a clean shutdown, or SIGKILL (a crash)
// when kill is set. Data is kept.
func (b *broker) stop(kill bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	args := []string{"--port", strconv.Itoa(b.port), "--timeout", "30"}
	if kill {
		args = append(args, "--kill")
	}
	cmd := exec.Command(scripts+"stop.sh", args...)
	cmd.Env = b.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop.sh: %v\n%s", err, out)
	}
	b.up = false
	return nil
}

func (b *broker) logTail() string {
	log, err := os.ReadFile(filepath.Join(b.runDir, "kafka.log"))
	if err != nil {
		return ""
	}
	return "---- kafka.log ----\n" + tail(string(log), 4000)
}

// stopSharedBroker stops the shared broker (if started) and deletes its data.
func stopSharedBroker() {
	b := sharedBroker
	if b == nil {
		return
	}
	if err := b.stop(false); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		_ = b.stop(true)
	}
	os.RemoveAll(b.base)
}

// topics creates the three topics of one test on the broker.
type topicSet struct{ raw, enriched, dead string }

func newTopics(t *testing.T, b *broker) topicSet {
	t.Helper()
	ts := topicSet{
		raw:      kafkatest.UniqueTopic(t, "hits.raw"),
		enriched: kafkatest.UniqueTopic(t, "pageviews.enriched"),
		dead:     kafkatest.UniqueTopic(t, "hits.deadletter"),
	}
	if err := kafkatest.CreateTopics(b.brokers(), kafkatest.DefaultPartitions, ts.raw, ts.enriched, ts.dead); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (ts topicSet) env(b *broker) []string {
	return []string{"KAFKA_BROKERS=" + b.addr, "RAW_TOPIC=" + ts.raw, "ENRICHED_TOPIC=" + ts.enriched, "DEADLETTER_TOPIC=" + ts.dead}
}
