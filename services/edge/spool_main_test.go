package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// unreachable is a broker address nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (e *edgeUnderTest) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := adminClient.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

func (e *edgeUnderTest) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	e.cancel()
	select {
	case code := <-e.exit:
		e.exit <- code // for the cleanup
		return code
	case <-time.After(within):
		t.Fatalf("edge did not stop within %v", within)
		return -1
	}
}

// TestSpoolAcrossRestart: Kafka is unreachable, so the edge spools every
// hit; it is stopped (SIGTERM) and started again, now with a broker, and
// replays them, before and along with new hits.
func TestSpoolAcrossRestart(t *testing.T) {
	const topic = "hits.raw"
	dir := t.TempDir()
	e := startEdge(t, "-kafka-brokers", unreachable(t), "-raw-topic", topic, "-keys", "demo=demo-project",
		"-spool-dir", dir, "-shutdown-drain-delay", "0s", "-shutdown-timeout", "5s", "-kafka-max-attempts", "1")
	// Ready without Kafka: the spool takes the hits.
	if code := e.readyz(t); code != http.StatusOK {
		t.Fatalf("readyz with an empty spool and no Kafka: %d, want 200", code)
	}
	const n = 30
	for i := range n {
		if code := e.hit(t, fmt.Sprintf("key=demo&n=%d", i)); code != 200 {
			t.Fatalf("hit %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.metric(t, "pixelstream_edge_spooled_total") < n {
		if time.Now().After(deadline) {
			t.Fatalf("spooled %v of %d", e.metric(t, "pixelstream_edge_spooled_total"), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := e.metric(t, "pixelstream_edge_spool_bytes"); v <= 0 {
		t.Fatalf("spool_bytes = %v", v)
	}
	start := time.Now()
	if code := e.stop(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	t.Logf("stopped in %v", time.Since(start))

	brokers := kafkatest.NewCluster(t, topic)
	e2 := startEdge(t, "-kafka-brokers", strings.Join(brokers, ","), "-raw-topic", topic, "-keys", "demo=demo-project",
		"-spool-dir", dir, "-shutdown-drain-delay", "0s")
	for i := n; i < n+10; i++ {
		e2.hit(t, fmt.Sprintf("key=demo&n=%d", i))
	}
	msgs := kafkatest.ReadAll(t, brokers, topic, n+10, 30*time.Second)
	seen := map[string]bool{}
	for _, m := range msgs {
		var r hit.Raw
		if err := r.Unmarshal(m.Value); err != nil {
			t.Fatal(err)
		}
		seen[string(r.Query)] = true
	}
	for i := range n + 10 {
		if !seen[fmt.Sprintf("key=demo&n=%d", i)] {
			t.Errorf("hit %d never reached Kafka", i)
		}
	}
	if v := e2.metric(t, "pixelstream_edge_spool_replayed_total"); v < n {
		t.Errorf("spool_replayed_total = %v, want at least %d", v, n)
	}
}

// TestSpoolFullNotReady: a tiny spool fills up: hits are still answered
// with the GIF, dropped and counted, and /readyz says 503.
func TestSpoolFullNotReady(t *testing.T) {
	e := startEdge(t, "-kafka-brokers", unreachable(t), "-keys", "demo=demo-project",
		"-spool-max-bytes", "4096", "-kafka-max-attempts", "1", "-shutdown-drain-delay", "0s", "-shutdown-timeout", "3s")
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; e.metric(t, `pixelstream_edge_dropped_total{reason="spool_full"}`) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no spool_full drops")
		}
		if code := e.hit(t, fmt.Sprintf("key=demo&n=%d&pad=%s", i, strings.Repeat("p", 200))); code != 200 {
			t.Fatalf("hit %d: %d", i, code)
		}
	}
	resp, err := adminClient.Get("http://" + e.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "spool") {
		t.Fatalf("readyz with a full spool: %d %q", resp.StatusCode, body)
	}
}

// TestAdminEndpointsNotPublic: the public port serves the pixel only.
func TestAdminEndpointsNotPublic(t *testing.T) {
	e := startEdge(t, "-kafka-brokers", unreachable(t), "-keys", "demo=demo-project", "-shutdown-drain-delay", "0s")
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/", "/debug/pprof/heap"} {
		status, resp := fasthttpGet(t, "http://"+e.addr+path)
		if status != 404 || len(resp) != 43 {
			t.Errorf("public %s: %d, %d bytes; want 404 with the GIF", path, status, len(resp))
		}
		adminResp, err := adminClient.Get("http://" + e.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		adminResp.Body.Close()
		if adminResp.StatusCode == 404 {
			t.Errorf("admin %s: 404", path)
		}
	}
}

func fasthttpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.SetConnectionClose()
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...)
}

// TestRateLimit: beyond -rate-burst a key gets 429 with the GIF; other
// keys are unaffected.
func TestRateLimit(t *testing.T) {
	e := startEdge(t, "-kafka-brokers", unreachable(t), "-keys", "demo=demo-project,other=other-project",
		"-rate-limit", "0.01", "-rate-burst", "2", "-shutdown-drain-delay", "0s")
	want := []int{200, 200, 429, 429}
	for i, w := range want {
		if code := e.hit(t, "key=demo"); code != w {
			t.Errorf("hit %d: %d, want %d", i, code, w)
		}
	}
	if code := e.hit(t, "key=other"); code != 200 {
		t.Errorf("another key: %d", code)
	}
	if v := e.metric(t, `pixelstream_edge_hits_total{result="rate_limited"}`); v != 2 {
		t.Errorf("hits_total{rate_limited} = %v, want 2", v)
	}
}

// TestSpoolDirInUse: two edges cannot share a spool directory.
func TestSpoolDirInUse(t *testing.T) {
	dir := t.TempDir()
	startEdge(t, "-kafka-brokers", unreachable(t), "-keys", "demo=demo-project", "-spool-dir", dir, "-shutdown-drain-delay", "0s")
	code := run(context.Background(), func() {}, []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-level", "fatal",
		"-kafka-brokers", "127.0.0.1:1", "-keys", "demo=demo-project", "-spool-dir", dir}, noEnv, io.Discard, io.Discard)
	if code != exitFailure {
		t.Fatalf("second edge on the same spool exited %d, want %d", code, exitFailure)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Fatal(err)
	}
}
