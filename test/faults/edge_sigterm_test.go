package faults

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// The edge gets SIGTERM under load while hits wait in its publish queue.
// Its publishing is throttled (one worker, small batches, and a Kafka
// producer quota on its client id, so the broker delays it the way an
// overloaded cluster does: fewer hits/s than the 300 hits/s load) so the
// queue holds hundreds of hits, and its shutdown timeout (3 s) is too short
// to publish them all:
// what is not published by the deadline must be spooled to disk, not
// dropped. The edge is then started again on the same spool dir, replays it,
// and every hit it ever answered 200 for arrives.
func TestEdgeSIGTERM(t *testing.T) {
	b := faultBroker(t)
	requireSpool(t)
	ts := newTopics(t, b)
	s := newServices(t, b, ts)
	s.startEnricher()
	s.edgeEnv = []string{
		"EDGE_PUBLISH_WORKERS=1", "EDGE_PUBLISH_BATCH_SIZE=16",
		"EDGE_DRAIN_DELAY=1s", "EDGE_SHUTDOWN_TIMEOUT=3s",
	}
	unthrottle := throttleEdge(t, b.addr, edgeQuotaBytes)
	edge := s.startEdge()

	const rate = 300
	l := startLoad(t, loadSpec{name: "sigterm", addr: s.edgeAddr, rate: rate, max: rate * 60, maxDur: 60 * time.Second})
	time.Sleep(5 * time.Second)
	m := s.edgeMetrics()
	queued := m.get(mQueueLength)

	termAt := time.Now()
	edge.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	readyCode, _ := s.edgeReady()
	exitErr, exited := edge.Wait(30 * time.Second)
	if !exited {
		t.Fatalf("the edge did not exit within 30 s of SIGTERM")
	}
	exitAfter := time.Since(termAt)
	time.Sleep(time.Second) // a moment of refused connections: nobody listens
	l.Stop()
	lc1 := l.counts()
	t.Logf("edge exited %s after SIGTERM (%v) with %g hits queued at the signal; /readyz %d during the drain delay",
		fmtDur(exitAfter), exitErr, queued, readyCode)
	if queued == 0 {
		t.Errorf("no hits were queued when SIGTERM came: the test did not test a drain")
	}
	if readyCode != 503 {
		t.Errorf("/readyz answered %d during the drain delay, want 503", readyCode)
	}

	// Start it again on the same spool dir, with normal publishing: it
	// replays whatever it spooled while stopping.
	unthrottle()
	s.edgeEnv = nil
	edge = s.startEdge()
	outage := time.Since(termAt) // SIGTERM to ready again
	drained := waitSpoolDrained(t, s, 60*time.Second)
	l2 := startLoad(t, loadSpec{name: "sigterm", first: 1_000_000, addr: s.edgeAddr, rate: 200, max: 200, maxDur: 10 * time.Second})
	l2.Wait()
	lc2 := l2.counts()

	want, sent := map[string]bool{}, map[string]bool{}
	l.accepted(want)
	l2.accepted(want)
	l.sentPaths(sent)
	l2.sentPaths(sent)
	a := s.waitArrivals(want, 0, 60*time.Second, 2*time.Second, "")
	after := s.edgeMetrics()

	lc := lc1
	lc.sent += lc2.sent
	lc.accepted += lc2.accepted
	lc.other += lc2.other
	lc.failed += lc2.failed
	f := newFigures("edge-sigterm", lc, want, sent, a)
	f.outage = outage
	f.extra = fmt.Sprintf("queued at SIGTERM=%g; first edge: sent=%d accepted=%d; restarted edge: %s (spool drained: %v), then sent=%d accepted=%d",
		queued, lc1.sent, lc1.accepted, edgeSummary(after), drained, lc2.sent, lc2.accepted)
	t.Log(f)

	if f.lost > 0 {
		t.Errorf("%d of %d hits answered 200 never arrived (e.g. %s)", f.lost, f.want, lostPaths(want, a, 5))
	}
	if lc2.accepted != lc2.sent {
		t.Errorf("the restarted edge accepted %d of %d hits", lc2.accepted, lc2.sent)
	}
	edge.Stop(t, 40*time.Second)
	s.enr.Stop(t, 40*time.Second)
}

// edgeQuotaBytes is the producer quota of the throttled edge: its batches
// of 16 hits are ~2 KB with LZ4, so a few batches a second.
const edgeQuotaBytes = 8000

// throttleEdge sets a Kafka producer byte-rate quota on the edge's client id
// (pixelstream-edge): the broker then holds back its produce requests. It
// returns a func that removes the quota (also run at cleanup).
func throttleEdge(t *testing.T, addr string, bytesPerSec float64) func() {
	t.Helper()
	set := func(remove bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(addr)}
		resp, err := c.AlterClientQuotas(ctx, &kafka.AlterClientQuotasRequest{Entries: []kafka.AlterClientQuotaEntry{{
			Entities: []kafka.AlterClientQuotaEntity{{EntityType: "client-id", EntityName: "pixelstream-edge"}},
			Ops:      []kafka.AlterClientQuotaOps{{Key: "producer_byte_rate", Value: bytesPerSec, Remove: remove}},
		}}})
		if err != nil {
			return err
		}
		for _, e := range resp.Entries {
			if e.Error != nil {
				return e.Error
			}
		}
		return nil
	}
	if err := set(false); err != nil {
		t.Fatalf("setting the edge's producer quota: %v", err)
	}
	var once sync.Once
	undo := func() {
		once.Do(func() {
			if err := set(true); err != nil {
				t.Errorf("removing the edge's producer quota: %v", err)
			}
		})
	}
	t.Cleanup(undo)
	return undo
}

// waitSpoolDrained waits until the edge's spool is empty (spool_bytes 0);
// it reports false if the edge has no spool metric or it did not drain.
func waitSpoolDrained(t *testing.T, s *services, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := s.edgeMetrics()
		if !m.has(mSpoolBytes) {
			return false
		}
		if m.sum(mSpoolBytes) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("the spool did not drain within %v: %s", timeout, edgeSummary(m))
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
}
