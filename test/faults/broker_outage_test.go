package faults

import (
	"fmt"
	"testing"
	"time"
)

// The broker crashes (SIGKILL) under a steady 200 hits/s and stays down for
// 30 s, then restarts on the same data dir. The edge keeps answering 200
// with the GIF throughout (it spools to disk), replays the spool once the
// broker is back, and every accepted hit arrives enriched; duplicates are
// allowed (at least once) and counted.
func TestBrokerOutage(t *testing.T) {
	b := faultBroker(t)
	requireSpool(t)
	ts := newTopics(t, b)
	s := newServices(t, b, ts)
	s.startEnricher()
	edge := s.startEdge()

	const rate, down = 200, 30 * time.Second
	l := startLoad(t, loadSpec{name: "outage", addr: s.edgeAddr, rate: rate, max: rate * 120, maxDur: 120 * time.Second})
	time.Sleep(5 * time.Second)

	outageStart := time.Now()
	if err := b.stop(true); err != nil {
		t.Fatal(err)
	}
	// During the outage: the edge answers every hit, and spools them.
	var readyDuring []string
	for time.Since(outageStart) < down {
		time.Sleep(5 * time.Second)
		code, body := s.edgeReady()
		readyDuring = append(readyDuring, fmt.Sprintf("%d", code))
		if code != 200 {
			t.Logf("edge /readyz during the outage: %d %s", code, body)
		}
		if !edge.Alive() {
			t.Fatalf("the edge exited during the broker outage: %v", edge.Err())
		}
	}
	during := s.edgeMetrics()
	lcDuring := l.counts()
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	outage := time.Since(outageStart)
	s.enricherSurvived("the broker outage")

	time.Sleep(5 * time.Second) // load goes on against the restarted broker
	l.Stop()
	lc := l.counts()

	// The spool drains: all accepted hits arrive.
	want, sent := map[string]bool{}, map[string]bool{}
	l.accepted(want)
	l.sentPaths(sent)
	a := s.waitArrivals(want, 0, 120*time.Second, 3*time.Second, "the broker outage")
	after := s.edgeMetrics()

	f := newFigures("broker-outage", lc, want, sent, a)
	f.outage = outage
	f.extra = fmt.Sprintf("during outage: answered=%d accepted=%d %s readyz=%v; after: %s",
		lcDuring.sent, lcDuring.accepted, edgeSummary(during), readyDuring, edgeSummary(after))
	t.Log(f)

	if lc.accepted != lc.sent {
		t.Errorf("the edge answered %d of %d hits with something other than 200 + GIF (statuses %v, errors %v): it must keep answering during a broker outage",
			lc.sent-lc.accepted, lc.sent, lc.statuses, lc.errs)
	}
	if f.lost > 0 {
		t.Errorf("%d of %d accepted hits never arrived (e.g. %s); edge: %s", f.lost, f.want, lostPaths(want, a, 5), edgeSummary(after))
	}
	if d := after.sum(mDropped); d > 0 {
		t.Errorf("the edge dropped hits: %s", after.nonZero(mDropped))
	}
	if after.has(mSpooled) && after.sum(mSpooled) == 0 {
		t.Errorf("a %v broker outage under load spooled nothing", outage.Round(time.Second))
	}
	edge.Stop(t, 40*time.Second)
	s.enr.Stop(t, 40*time.Second)
}
