package session

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/services/enricher/internal/visitor"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func vid(n int) visitor.ID {
	var id visitor.ID
	binary.BigEndian.PutUint64(id[8:], uint64(n)+1)
	id[0] = 0xee
	return id
}

func eid(n int) hit.EventID {
	var id hit.EventID
	binary.BigEndian.PutUint64(id[8:], uint64(n)+1)
	id[0] = 0x01
	return id
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// step is one Observe call and what it must return. wantSession is the
// index of the event whose id is the session id.
type step struct {
	visitor, prev int // -1: zero ID
	event         int
	at            time.Duration // after t0
	wantSession   int
	wantStart     bool
	wantSeq       int
}

func run(t *testing.T, tr *Tracker, steps []step) {
	t.Helper()
	for n, s := range steps {
		var prev visitor.ID
		if s.prev >= 0 {
			prev = vid(s.prev)
		}
		sess, start, seq := tr.Observe(vid(s.visitor), prev, eid(s.event), t0.Add(s.at))
		if sess != eid(s.wantSession) || start != s.wantStart || seq != s.wantSeq {
			t.Fatalf("step %d (%+v): got session of event %x start %v seq %d; want event %d start %v seq %d",
				n, s, sess[8:], start, seq, s.wantSession, s.wantStart, s.wantSeq)
		}
	}
}

func TestObserve(t *testing.T) {
	const m = time.Minute
	tests := []struct {
		name  string
		steps []step
	}{
		{"first hit starts a session", []step{
			{0, -1, 0, 0, 0, true, 1},
		}},
		{"hits within the timeout continue it with rising seq", []step{
			{0, -1, 0, 0, 0, true, 1},
			{0, -1, 1, 10 * m, 0, false, 2},
			{0, -1, 2, 39 * m, 0, false, 3}, // 29 min after the previous hit, 39 after the first
		}},
		{"one nanosecond under the timeout continues", []step{
			{0, -1, 0, 0, 0, true, 1},
			{0, -1, 1, 30*m - 1, 0, false, 2},
		}},
		{"exactly the timeout starts a new session", []step{
			{0, -1, 0, 0, 0, true, 1},
			{0, -1, 1, 30 * m, 1, true, 1},
			{0, -1, 2, 31 * m, 1, false, 2},
		}},
		{"visitors are independent", []step{
			{0, -1, 0, 0, 0, true, 1},
			{1, -1, 1, m, 1, true, 1},
			{0, -1, 2, 2 * m, 0, false, 2},
			{1, -1, 3, 3 * m, 1, false, 2},
		}},
		{"an out-of-order hit within the timeout continues without moving the end back", []step{
			{0, -1, 0, 10 * m, 0, true, 1},
			{0, -1, 1, 5 * m, 0, false, 2},
			{0, -1, 2, 39 * m, 0, false, 3}, // 29 min after the hit at 10 min
		}},
		{"a straggler older than the timeout is a one-hit session and leaves the open one alone", []step{
			{0, -1, 0, 60 * m, 0, true, 1},
			{0, -1, 1, 10 * m, 1, true, 1},
			{0, -1, 2, 61 * m, 0, false, 2},
		}},
		{"a session continues across midnight under the new id", []step{
			// visitor 10 is the id under yesterday's salt, 11 under today's.
			{10, 9, 0, 11*time.Hour + 50*m, 0, true, 1},  // 23:50
			{11, 10, 1, 12*time.Hour + 5*m, 0, false, 2}, // 00:05, found by yesterday's id
			{11, 10, 2, 12*time.Hour + 20*m, 0, false, 3},
			// a late hit of yesterday, processed after the rekey, still finds it
			{10, 9, 3, 11*time.Hour + 59*m, 0, false, 4},
		}},
		{"the previous day's session must be within the timeout", []step{
			{10, 9, 0, 11*time.Hour + 20*m, 0, true, 1}, // 23:20
			{11, 10, 1, 12*time.Hour + 5*m, 1, true, 1}, // 00:05: 45 min later
		}},
		{"today's own open session wins over yesterday's", []step{
			{10, 9, 0, 11*time.Hour + 55*m, 0, true, 1},
			{11, -1, 1, 12*time.Hour + 1*m, 1, true, 1}, // prev not passed: a new session
			{11, 10, 2, 12*time.Hour + 2*m, 1, false, 2},
		}},
		{"an ended session under today's id gives way to yesterday's open one", []step{
			{11, -1, 0, 0, 0, true, 1},
			{10, -1, 1, 11*time.Hour + 55*m, 1, true, 1},
			{11, 10, 2, 12*time.Hour + 1*m, 1, false, 2},
			{11, 10, 3, 12*time.Hour + 2*m, 1, false, 3},
		}},
		{"prev equal to the id is ignored", []step{
			{0, 0, 0, 0, 0, true, 1},
			{0, 0, 1, m, 0, false, 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(Config{Now: fixedNow(t0.Add(24 * time.Hour))})
			run(t, tr, tt.steps)
		})
	}
}

func TestObserveStats(t *testing.T) {
	tr := New(Config{Now: fixedNow(t0.Add(24 * time.Hour))})
	run(t, tr, []step{
		{10, -1, 0, 11*time.Hour + 50*time.Minute, 0, true, 1},
		{11, 10, 1, 12*time.Hour + 5*time.Minute, 0, false, 2},
		{10, -1, 2, 0, 2, true, 1}, // too old for the open session: late
	})
	st := tr.Stats()
	want := Stats{Open: 1, Started: 1, Continued: 1, Rekeyed: 1, Late: 1}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestNeedsPrevious(t *testing.T) {
	tr := New(Config{Timeout: 30 * time.Minute})
	midnight := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		at   time.Time
		want bool
	}{
		{midnight, true},
		{midnight.Add(30*time.Minute - 1), true},
		{midnight.Add(30 * time.Minute), false},
		{midnight.Add(-time.Nanosecond), false},
		{midnight.In(time.FixedZone("CET", 3600)).Add(10 * time.Minute), true},
	}
	for _, tt := range tests {
		if got := tr.NeedsPrevious(tt.at); got != tt.want {
			t.Errorf("NeedsPrevious(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestMaxSessions(t *testing.T) {
	tr := New(Config{MaxSessions: 3, Now: fixedNow(t0)})
	for v := range 5 {
		tr.Observe(vid(v), visitor.ID{}, eid(v), t0.Add(time.Duration(v)*time.Second))
	}
	if st := tr.Stats(); st.Open != 3 || st.Evicted != 2 {
		t.Fatalf("stats %+v, want 3 open and 2 evicted", st)
	}
	if len(tr.index) != 3 || tr.count != 3 || tr.slots.n != 3 {
		t.Fatalf("index %d count %d slots %d", len(tr.index), tr.count, tr.slots.n)
	}
	// An evicted visitor's next hit starts a new session (a split, counted).
	var evicted []int
	for v := range 5 {
		if _, ok := tr.index[vid(v)]; !ok {
			evicted = append(evicted, v)
		}
	}
	if len(evicted) != 2 {
		t.Fatalf("visitors %v evicted, want 2", evicted)
	}
	for _, v := range evicted {
		if _, start, _ := tr.Observe(vid(v), visitor.ID{}, eid(100+v), t0.Add(10*time.Second)); !start {
			t.Fatalf("visitor %d was evicted but its session continued", v)
		}
	}
}

// TestMaxSessionsKeepsActiveVisitors: with the tracker full, a stream of
// one-hit visitors evicts each other, never a visitor with ongoing hits.
func TestMaxSessionsKeepsActiveVisitors(t *testing.T) {
	tr := New(Config{MaxSessions: 8, Now: fixedNow(t0)})
	at := t0
	active := []int{1000, 1001}
	for _, a := range active {
		tr.Observe(vid(a), visitor.ID{}, eid(a), at)
	}
	for n := range 500 {
		at = at.Add(time.Second)
		tr.Observe(vid(n), visitor.ID{}, eid(n), at)
		for k, a := range active {
			sess, start, seq := tr.Observe(vid(a), visitor.ID{}, eid(10000+2*n+k), at)
			if start || sess != eid(a) || seq != n+2 {
				t.Fatalf("after %d one-hit visitors, active visitor %d: start %v seq %d", n, a, start, seq)
			}
		}
	}
	if st := tr.Stats(); st.Open != 8 || st.Evicted != 500-6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIdleEviction(t *testing.T) {
	tr := New(Config{Timeout: 30 * time.Minute, IdleRetention: time.Hour, Now: fixedNow(t0.Add(24 * time.Hour))})
	tr.Observe(vid(0), visitor.ID{}, eid(0), t0)
	tr.Observe(vid(1), visitor.ID{}, eid(1), t0.Add(10*time.Minute))
	// 45 minutes on: both sessions have ended but are kept (retention 1 h).
	tr.Observe(vid(2), visitor.ID{}, eid(2), t0.Add(45*time.Minute))
	if st := tr.Stats(); st.Open != 3 || st.Expired != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Ended sessions still start anew on the next hit.
	if _, start, _ := tr.Observe(vid(1), visitor.ID{}, eid(3), t0.Add(45*time.Minute)); !start {
		t.Fatal("an ended session continued")
	}
	// At 1 h, visitor 0 (last hit at 0) leaves memory.
	tr.Observe(vid(2), visitor.ID{}, eid(4), t0.Add(time.Hour))
	if st := tr.Stats(); st.Open != 2 || st.Expired != 1 {
		t.Fatalf("stats %+v, want visitor 0 expired", st)
	}
	// Hours later every idle session goes; the new one stays.
	tr.Observe(vid(5), visitor.ID{}, eid(5), t0.Add(5*time.Hour))
	if st := tr.Stats(); st.Open != 1 || st.Expired != 3 {
		t.Fatalf("stats %+v", st)
	}
	if len(tr.index) != 1 {
		t.Fatalf("index holds %d ids", len(tr.index))
	}
}

func TestRekeyedSessionLeavesMemoryWithBothIDs(t *testing.T) {
	tr := New(Config{Now: fixedNow(t0.Add(48 * time.Hour))})
	run(t, tr, []step{
		{10, -1, 0, 11*time.Hour + 50*time.Minute, 0, true, 1},
		{11, 10, 1, 12*time.Hour + 5*time.Minute, 0, false, 2},
	})
	if len(tr.index) != 2 || tr.count != 1 {
		t.Fatalf("index %d count %d: want two ids for one session", len(tr.index), tr.count)
	}
	tr.Observe(vid(20), visitor.ID{}, eid(2), t0.Add(20*time.Hour))
	if len(tr.index) != 1 || tr.count != 1 {
		t.Fatalf("index %d count %d after expiry", len(tr.index), tr.count)
	}
}

func TestFutureHitDoesNotExpireSessions(t *testing.T) {
	tr := New(Config{Now: fixedNow(t0)})
	tr.Observe(vid(0), visitor.ID{}, eid(0), t0)
	tr.Observe(vid(1), visitor.ID{}, eid(1), t0.Add(24*time.Hour)) // an edge with a clock a day ahead
	if _, start, seq := tr.Observe(vid(0), visitor.ID{}, eid(2), t0.Add(time.Minute)); start || seq != 2 {
		t.Fatal("a hit from the future expired the open sessions")
	}
}

// TestObserveMatchesModel compares the tracker with a plain map that never
// forgets, on random in-order traffic: eviction of idle sessions must never
// change a result.
func TestObserveMatchesModel(t *testing.T) {
	type state struct {
		last    time.Time
		session hit.EventID
		seq     int
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tr := New(Config{Timeout: 30 * time.Minute, IdleRetention: 30 * time.Minute, Now: fixedNow(t0.Add(100 * time.Hour))})
	model := map[visitor.ID]*state{}
	now := t0
	for n := range 200000 {
		now = now.Add(time.Duration(rng.IntN(int(200 * time.Millisecond))))
		v := vid(rng.IntN(5000))
		e := eid(n)
		sess, start, seq := tr.Observe(v, visitor.ID{}, e, now)
		st := model[v]
		if st == nil || now.Sub(st.last) >= 30*time.Minute {
			st = &state{session: e}
			model[v] = st
		}
		st.seq++
		st.last = now
		if sess != st.session || start != (st.seq == 1) || seq != st.seq {
			t.Fatalf("hit %d: tracker (%x %v %d), model (%x %d)", n, sess, start, seq, st.session, st.seq)
		}
	}
	if st := tr.Stats(); st.Expired == 0 || st.Evicted != 0 {
		t.Fatalf("stats %+v: the run should have expired sessions and evicted none", st)
	}
	// 5,000 visitors need slots beyond the first chunk of the slab.
	if len(tr.slots.chunks) < 2 {
		t.Fatalf("%d slots in %d chunks: the run did not cross a chunk boundary", tr.slots.n, len(tr.slots.chunks))
	}
}

func TestObserveAllocs(t *testing.T) {
	tr := New(Config{MaxSessions: 1000, Now: fixedNow(t0)})
	at := t0
	n := 0
	observe := func() {
		n++
		at = at.Add(time.Millisecond)
		tr.Observe(vid(n%2000), visitor.ID{}, eid(n), at) // 2000 visitors over 1000 slots: constant eviction
	}
	for range 10000 { // warm: the slot slice and map have grown
		observe()
	}
	if a := testing.AllocsPerRun(10000, observe); a != 0 {
		t.Fatalf("Observe allocates %.2f times per call", a)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Timeout: -1}, {MaxSessions: -1}, {Timeout: time.Hour, IdleRetention: time.Minute}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			New(cfg)
		}()
	}
}

// BenchmarkObserve is the steady state: 100k visitors with open sessions,
// each hit continuing one.
func BenchmarkObserve(b *testing.B) {
	const visitors = 100_000
	tr := New(Config{Now: fixedNow(t0)})
	ids := make([]visitor.ID, visitors)
	for i := range ids {
		ids[i] = vid(i)
		tr.Observe(ids[i], visitor.ID{}, eid(i), t0)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	at := t0
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		at = at.Add(10 * time.Microsecond)
		tr.Observe(ids[rng.IntN(visitors)], visitor.ID{}, eid(n), at)
	}
}

// BenchmarkObserveNewSessions is the worst case: every hit is a new visitor
// and the tracker is full, so each one evicts another.
func BenchmarkObserveNewSessions(b *testing.B) {
	tr := New(Config{MaxSessions: 100_000, Now: fixedNow(t0)})
	at := t0
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		at = at.Add(10 * time.Microsecond)
		tr.Observe(vid(n), visitor.ID{}, eid(n), at)
	}
}

// BenchmarkObserveAfterMidnight looks every hit up under both ids, as in the
// first half hour of a day.
func BenchmarkObserveAfterMidnight(b *testing.B) {
	const visitors = 100_000
	tr := New(Config{Now: fixedNow(t0)})
	for i := range visitors {
		tr.Observe(vid(i), visitor.ID{}, eid(i), t0)
	}
	at := t0
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		at = at.Add(10 * time.Microsecond)
		v := n % visitors
		tr.Observe(vid(visitors+v), vid(v), eid(n), at)
	}
}

func TestCollector(t *testing.T) {
	tr := New(Config{Now: fixedNow(t0.Add(24 * time.Hour))})
	run(t, tr, []step{
		{10, -1, 0, 11*time.Hour + 50*time.Minute, 0, true, 1},
		{11, 10, 1, 12*time.Hour + 5*time.Minute, 0, false, 2},
	})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(tr.Collector()); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(tr.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	want := `# HELP pixelstream_enricher_sessions_open Sessions held in memory by this instance.
# TYPE pixelstream_enricher_sessions_open gauge
pixelstream_enricher_sessions_open 1
# HELP pixelstream_enricher_sessions_rekeyed_total Sessions continued after midnight under the visitor's new id, found by the previous day's id.
# TYPE pixelstream_enricher_sessions_rekeyed_total counter
pixelstream_enricher_sessions_rekeyed_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pixelstream_enricher_sessions_open", "pixelstream_enricher_sessions_rekeyed_total"); err != nil {
		t.Fatal(err)
	}
}
