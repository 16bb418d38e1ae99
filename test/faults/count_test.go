package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// arrivals is what the enriched topic holds, counted by page path and event id.
type arrivals struct {
	records int
	byPath  map[string]int
	byID    map[string]int
}

// readArrivals reads the whole enriched topic with kcat (an independent client).
func readArrivals(t *testing.T, b *broker, topic string) arrivals {
	t.Helper()
	a := arrivals{byPath: map[string]int{}, byID: map[string]int{}}
	for _, v := range kafkatest.Kcat(t, b.brokers(), topic, 60*time.Second) {
		var pv struct {
			EventID  string `json:"event_id"`
			PagePath string `json:"page_path"`
		}
		if err := json.Unmarshal(v, &pv); err != nil {
			t.Fatalf("enriched record is not JSON: %v: %.200s", err, v)
		}
		a.records++
		a.byPath[pv.PagePath]++
		a.byID[pv.EventID]++
	}
	return a
}

// missing counts the wanted paths not (yet) arrived.
func (a arrivals) missing(want map[string]bool) int {
	n := 0
	for p := range want {
		if a.byPath[p] == 0 {
			n++
		}
	}
	return n
}

// stallTimeout ends waitArrivals early when the topic stops growing while
// hits are still missing: they are lost, not late.
const stallTimeout = 25 * time.Second

// waitArrivals reads the enriched topic until every wanted path is there
// (but allowMissing: as many as the edge counted as dropped), or the timeout
// passes, or nothing new arrived for stallTimeout; then once more after
// settle, so late duplicates are counted too. Meanwhile it checks that the
// enricher is running (see enricherSurvived; fault names what it rides out).
func (s *services) waitArrivals(want map[string]bool, allowMissing int, timeout, settle time.Duration, fault string) arrivals {
	t, b, topic := s.t, s.b, s.topics.enriched
	t.Helper()
	deadline := time.Now().Add(timeout)
	var a arrivals
	last, lastGrew := -1, time.Now()
	for {
		s.enricherSurvived(fault)
		a = readArrivals(t, b, topic)
		if a.missing(want) <= allowMissing {
			break
		}
		if a.records != last {
			last, lastGrew = a.records, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastGrew) > stallTimeout {
			t.Logf("waited for arrivals: %d records, %d accepted hits missing, nothing new for %s", a.records, a.missing(want), fmtDur(time.Since(lastGrew)))
			break
		}
		time.Sleep(2 * time.Second)
	}
	if settle > 0 {
		time.Sleep(settle)
		a = readArrivals(t, b, topic)
	}
	return a
}

// figures is one fault test's result line.
type figures struct {
	name       string
	lc         loadCounts
	want       int // accepted hits (answered 200 + GIF)
	arrived    int // of those, how many arrived at least once
	lost       int // accepted, never arrived
	dupRecords int // records beyond the first for a path
	dupIDs     int // records beyond the first for an event id (redeliveries)
	unexpected int // arrived though not accepted (the answer was lost)
	outage     time.Duration
	extra      string
}

func newFigures(name string, lc loadCounts, want, sent map[string]bool, a arrivals) figures {
	f := figures{name: name, lc: lc, want: len(want)}
	for p := range want {
		if a.byPath[p] > 0 {
			f.arrived++
		}
	}
	f.lost = f.want - f.arrived
	for p, n := range a.byPath {
		if n > 1 {
			f.dupRecords += n - 1
		}
		if !want[p] && sent[p] {
			f.unexpected++
		}
	}
	for _, n := range a.byID {
		if n > 1 {
			f.dupIDs += n - 1
		}
	}
	return f
}

func (f figures) String() string {
	s := fmt.Sprintf("FAULT %s: sent=%d accepted=%d arrived=%d lost=%d duplicates=%d (same event_id: %d) outage=%s",
		f.name, f.lc.sent, f.want, f.arrived, f.lost, f.dupRecords, f.dupIDs, fmtDur(f.outage))
	if f.lc.other > 0 {
		s += fmt.Sprintf(" not_accepted=%d %v", f.lc.other, f.lc.statuses)
	}
	if f.lc.failed > 0 {
		s += fmt.Sprintf(" unanswered=%d", f.lc.failed)
	}
	if f.unexpected > 0 {
		s += fmt.Sprintf(" arrived_unanswered=%d", f.unexpected)
	}
	if f.extra != "" {
		s += " | " + f.extra
	}
	return s
}

// lostPaths lists up to n lost paths, for failure messages.
func lostPaths(want map[string]bool, a arrivals, n int) string {
	var out []string
	for p := range want {
		if a.byPath[p] == 0 && len(out) < n {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}
