package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header ticker never stops, and a
		// stopped server's worker-pool cleaner notices the stop only after
		// its current sleep (MaxIdleWorkerDuration, 10 s).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// The test client's process-wide DNS cache cleaner, and its host
		// client cleaner, which exits only after its hosts have idled.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"))
}

func noEnv(string) string { return "" }

func TestRefusesToStartWithoutBrokers(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), func() {}, []string{"-keys", "demo=demo-project"}, noEnv, io.Discard, &stderr)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "no Kafka brokers: set -kafka-brokers or KAFKA_BROKERS") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

func TestRefusesBadProjectsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "projects.yaml")
	if err := os.WriteFile(path, []byte("projects: [{id: a}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	code := run(context.Background(), func() {}, []string{"-kafka-brokers", "127.0.0.1:1", "-projects-file", path, "-log-level", "error"}, noEnv, io.Discard, io.Discard)
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
}

func TestPrintOptions(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(context.Background(), func() {}, []string{"-print-options"}, noEnv, &stdout, io.Discard); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "| flag |") || !strings.Contains(stdout.String(), "`KAFKA_BROKERS`") {
		t.Fatalf("not the options table:\n%s", stdout.String())
	}
}

// edgeUnderTest runs the whole service in-process on loopback ports.
type edgeUnderTest struct {
	addr, admin string
	cancel      context.CancelFunc
	exit        chan int
}

func startEdge(t *testing.T, args ...string) *edgeUnderTest {
	t.Helper()
	addrs := make(chan [2]string, 1)
	listening = func(public, admin string) { addrs <- [2]string{public, admin} }
	t.Cleanup(func() { listening = nil })
	ctx, cancel := context.WithCancel(context.Background())
	e := &edgeUnderTest{cancel: cancel, exit: make(chan int, 1)}
	args = append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-level", "error", "-spool-dir", t.TempDir()}, args...)
	go func() { e.exit <- run(ctx, func() {}, args, noEnv, io.Discard, os.Stderr) }()
	select {
	case a := <-addrs:
		e.addr, e.admin = a[0], a[1]
	case code := <-e.exit:
		t.Fatalf("edge exited with %d before listening", code)
	case <-time.After(20 * time.Second):
		t.Fatal("edge did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.exit:
		case <-time.After(30 * time.Second):
			t.Error("edge did not stop")
		}
	})
	return e
}

// adminClient opens a connection per request, so no keep-alive goroutines
// outlive the test.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func (e *edgeUnderTest) readyz(t *testing.T) int {
	t.Helper()
	resp, err := adminClient.Get("http://" + e.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *edgeUnderTest) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.readyz(t) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("edge never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hit fires one pixel request and checks the answer is the GIF.
func (e *edgeUnderTest) hit(t *testing.T, query string, headers ...string) int {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + e.addr + "/api/v1/pixel?" + query)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetConnectionClose()
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(resp.Body()) != 43 || string(resp.Header.ContentType()) != "image/gif" {
		t.Fatalf("answer is not the pixel: %d %q", resp.StatusCode(), resp.Body())
	}
	return resp.StatusCode()
}

// TestGracefulShutdown runs the whole edge against an in-process broker:
// hits land on the topic, and on shutdown readiness turns 503 while hits
// are still served during the drain delay, then everything queued is
// flushed before run returns 0.
func TestGracefulShutdown(t *testing.T) {
	const topic = "hits.raw"
	brokers := kafkatest.NewCluster(t, topic)
	e := startEdge(t, "-kafka-brokers", strings.Join(brokers, ","), "-raw-topic", topic,
		"-keys", "demo=demo-project", "-shutdown-drain-delay", "700ms", "-shutdown-timeout", "10s")
	e.waitReady(t)

	const before = 20
	for i := range before {
		if code := e.hit(t, fmt.Sprintf("key=demo&n=%d", i)); code != 200 {
			t.Fatalf("hit %d: status %d", i, code)
		}
	}
	if code := e.hit(t, "key=wrong"); code != 403 {
		t.Fatalf("unknown key: %d", code)
	}

	e.cancel() // SIGTERM
	time.Sleep(150 * time.Millisecond)
	if code := e.readyz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz during drain: %d, want 503", code)
	}
	if code := e.hit(t, "key=demo&n=during-drain"); code != 200 {
		t.Fatalf("hit during drain: %d", code)
	}
	select {
	case code := <-e.exit:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("edge did not stop")
	}
	e.exit <- 0 // for the cleanup

	msgs := kafkatest.ReadAll(t, brokers, topic, before+1, 20*time.Second)
	if len(msgs) != before+1 {
		t.Fatalf("read %d hits from Kafka, want %d", len(msgs), before+1)
	}
	var drained bool
	for _, m := range msgs {
		var r hit.Raw
		if err := r.Unmarshal(m.Value); err != nil {
			t.Fatal(err)
		}
		drained = drained || strings.Contains(string(r.Query), "during-drain")
	}
	if !drained {
		t.Error("the hit served during the drain delay was not published")
	}
}
