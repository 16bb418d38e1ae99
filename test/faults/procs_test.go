package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/test/internal/svc"
)

// The process helpers are shared with the end-to-end tests (internal/svc);
// these names keep the fault tests short.
type proc = svc.Proc

func freeAddr(t *testing.T) string { return svc.FreeAddr(t) }

// startProc starts bin with the environment plus env; FAULTS_LOGS=1 prints
// its output even when the test passes.
func startProc(t *testing.T, name, bin string, env ...string) *proc {
	t.Helper()
	return svc.Start(t, name, bin, os.Getenv("FAULTS_LOGS") == "1", env...)
}

func tail(s string, n int) string      { return svc.Tail(s, n) }
func lastLines(s string, n int) string { return svc.LastLines(s, n) }
func httpGet(url string) (int, string) { return svc.HTTPGet(url) }

func waitStatus(t *testing.T, p *proc, url string, want int, timeout time.Duration) {
	t.Helper()
	svc.WaitStatus(t, p, url, want, timeout)
}

func pollStatus(t *testing.T, p *proc, url string, want int, timeout time.Duration) (bool, string) {
	t.Helper()
	return svc.PollStatus(t, p, url, want, timeout)
}

// services starts and restarts the edge and the enricher of one test.
type services struct {
	t      *testing.T
	b      *broker
	topics topicSet

	edgeAddr, edgeAdmin, enrAdmin string
	spoolDir                      string
	edgeEnv                       []string // test-specific edge settings
	enrEnv                        []string
	group                         string
	enr                           *proc // the enricher running now
}

func newServices(t *testing.T, b *broker, ts topicSet) *services {
	return &services{t: t, b: b, topics: ts,
		edgeAddr: freeAddr(t), edgeAdmin: freeAddr(t), enrAdmin: freeAddr(t),
		spoolDir: filepath.Join(t.TempDir(), "spool"), // created 0700 by the edge
		group:    "faults-" + ts.raw}
}

// startEnricher starts an enricher (a fresh process, the same group) and
// waits until it is alive.
func (s *services) startEnricher() *proc {
	s.t.Helper()
	env := append(s.topics.env(s.b),
		"ENRICHER_ADMIN_ADDR="+s.enrAdmin, "ENRICHER_GROUP_ID="+s.group,
		"ENRICHER_GEOIP_CITY=",              // geo is not what these tests look at
		"ENRICHER_GROUP_SESSION_TIMEOUT=6s", // the broker's minimum: a killed member's partitions move fast
		"ENRICHER_RETRY_MAX=2s",             // reconnect soon after a broker outage
	)
	p := startProc(s.t, "enricher", bins.enricher, append(env, s.enrEnv...)...)
	waitStatus(s.t, p, "http://"+s.enrAdmin+"/healthz", 200, 30*time.Second)
	s.enr = p
	return p
}

// enricherSurvived checks that the enricher has not exited on its own: it
// must ride out every fault here (a broker outage is retried until it
// ends). If it exited, that is an error, and a new one is started so the
// rest of the test can still count what the edge delivered.
func (s *services) enricherSurvived(fault string) {
	s.t.Helper()
	p := s.enr
	if p == nil || p.Alive() || p.Stopped() {
		return
	}
	if fault == "" {
		fault = "the test"
	}
	s.t.Errorf("the enricher exited on its own during %s (%v) instead of retrying until Kafka answers again; its last lines:\n%s",
		fault, p.Err(), lastLines(p.Output(), 3))
	p.MarkStopped() // reported
	s.startEnricher()
}

// startEdge starts an edge on the test's addresses and spool dir and waits
// until /readyz answers 200.
func (s *services) startEdge() *proc {
	s.t.Helper()
	p := s.startEdgeNoWait()
	waitStatus(s.t, p, "http://"+s.edgeAdmin+"/readyz", 200, 30*time.Second)
	return p
}

func (s *services) startEdgeNoWait() *proc {
	s.t.Helper()
	env := append(s.topics.env(s.b),
		"EDGE_ADDR="+s.edgeAddr, "EDGE_ADMIN_ADDR="+s.edgeAdmin,
		"EDGE_KEYS="+apiKey+"=faults",
		"EDGE_TRUSTED_PROXIES=127.0.0.0/8", // the load spreads over client IPs (X-Forwarded-For)
		"EDGE_INSTANCE=faults-edge",
		"EDGE_DRAIN_DELAY=0s",
		"EDGE_SPOOL_DIR="+s.spoolDir,
	)
	return startProc(s.t, "edge", bins.edge, append(env, s.edgeEnv...)...)
}

func (s *services) edgeMetrics() metrics {
	s.t.Helper()
	return scrape(s.t, "http://"+s.edgeAdmin+"/metrics")
}

func (s *services) edgeReady() (int, string) {
	return httpGet("http://" + s.edgeAdmin + "/readyz")
}

// requireSpool fails the test when the edge has no disk spool (yet).
func requireSpool(t *testing.T) {
	t.Helper()
	if !edgeHas("-spool-dir") {
		t.Errorf("the edge has no -spool-dir option: the disk spool has not landed, so this fault loses hits (running anyway to report the figures)")
	}
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
