package faults

import (
	"fmt"
	"testing"
	"time"
)

// The enricher is killed with SIGKILL mid-stream (no shutdown, no commit)
// and started again in the same consumer group. It commits offsets only
// after its output is acknowledged, so the records it had produced but not
// committed are produced again (duplicates, counted) and none is skipped:
// every accepted hit arrives.
func TestEnricherKilled(t *testing.T) {
	b := faultBroker(t)
	ts := newTopics(t, b)
	s := newServices(t, b, ts)
	s.startEnricher()
	edge := s.startEdge()

	const rate = 200
	l := startLoad(t, loadSpec{name: "enrkill", addr: s.edgeAddr, rate: rate, max: rate * 60, maxDur: 60 * time.Second})
	time.Sleep(6 * time.Second)

	enrURL := "http://" + s.enrAdmin + "/metrics"
	before := scrape(t, enrURL).nonZero(mEnricherRecords)
	killed := time.Now()
	s.enr.Kill()
	time.Sleep(2 * time.Second)
	s.startEnricher()
	restarted := time.Since(killed)

	// Wait until the new member has its partitions and enriches again
	// (its own metrics: reading the topic would take longer).
	resumed := time.Duration(0)
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if m, err := tryScrape(enrURL); err == nil && m.get(mEnricherRecords+`{outcome="enriched"}`) > 0 {
			resumed = time.Since(killed)
			break
		}
	}
	time.Sleep(4 * time.Second)
	l.Stop()
	lc := l.counts()

	want, sent := map[string]bool{}, map[string]bool{}
	l.accepted(want)
	l.sentPaths(sent)
	a := s.waitArrivals(want, 0, 60*time.Second, 2*time.Second, "")
	em := scrape(t, enrURL)

	f := newFigures("enricher-kill9", lc, want, sent, a)
	f.outage = restarted
	f.extra = fmt.Sprintf("killed enricher had processed %s; the new one resumed %s after the kill and processed %s",
		before, fmtDur(resumed), em.nonZero(mEnricherRecords))
	t.Log(f)

	if lc.accepted != lc.sent {
		t.Errorf("the edge answered %d of %d hits with something other than 200 + GIF (statuses %v, errors %v)",
			lc.sent-lc.accepted, lc.sent, lc.statuses, lc.errs)
	}
	if f.lost > 0 {
		t.Errorf("%d of %d accepted hits never arrived after the enricher was killed (e.g. %s)", f.lost, f.want, lostPaths(want, a, 5))
	}
	if resumed == 0 {
		t.Errorf("the restarted enricher enriched nothing within 40 s of the kill")
	}
	edge.Stop(t, 40*time.Second)
	s.enr.Stop(t, 40*time.Second)
}
