package faults

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running service binary whose output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
	// stopped: the test signalled or killed it, so an exit is expected.
	stopped bool
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process printed so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProc starts bin with the environment plus env. Its cleanup stops it
// with SIGTERM if it is still running and prints its output if the test failed.
func startProc(t *testing.T, name, bin string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(t, 40*time.Second)
		if t.Failed() || os.Getenv("FAULTS_LOGS") == "1" {
			t.Logf("---- %s output ----\n%s", name, tail(p.Output(), 6000))
		}
	})
	return p
}

// Alive reports whether the process is still running.
func (p *proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig without waiting.
func (p *proc) Signal(sig syscall.Signal) {
	p.stopped = true
	_ = p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for exit code 0); ok is false on timeout.
func (p *proc) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill() {
	p.stopped = true
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits for a graceful exit; it fails the test if
// the process needed killing or exited with an error, or had exited on its
// own with an error before.
func (p *proc) Stop(t *testing.T, timeout time.Duration) {
	if !p.Alive() {
		if !p.stopped && p.err != nil {
			t.Errorf("%s had exited on its own with %v; its last lines:\n%s", p.name, p.err, lastLines(p.Output(), 3))
			p.stopped = true // reported once
		}
		return
	}
	p.Signal(syscall.SIGTERM)
	if err, ok := p.Wait(timeout); !ok {
		p.Kill()
		t.Errorf("%s did not stop within %v of SIGTERM", p.name, timeout)
	} else if err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.name, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// httpGet returns the status and body of a GET, or 0 and the error text.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitStatus polls url until it answers want, failing the test if p exits
// or the timeout passes.
func waitStatus(t *testing.T, p *proc, url string, want int, timeout time.Duration) {
	t.Helper()
	if ok, last := pollStatus(t, p, url, want, timeout); !ok {
		t.Fatalf("%s did not answer %d within %v (last: %s)", url, want, timeout, last)
	}
}

// pollStatus polls url until it answers want or the timeout passes, and
// returns whether it did and the last answer; it fails the test if p exits.
func pollStatus(t *testing.T, p *proc, url string, want int, timeout time.Duration) (bool, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var code int
	var body string
	for time.Now().Before(deadline) {
		if p != nil && !p.Alive() {
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, tail(p.Output(), 4000))
		}
		if code, body = httpGet(url); code == want {
			return true, fmt.Sprintf("%d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, fmt.Sprintf("%d %s", code, body)
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
	if p == nil || p.Alive() || p.stopped {
		return
	}
	if fault == "" {
		fault = "the test"
	}
	s.t.Errorf("the enricher exited on its own during %s (%v) instead of retrying until Kafka answers again; its last lines:\n%s",
		fault, p.err, lastLines(p.Output(), 3))
	p.stopped = true // reported
	s.startEnricher()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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
