package dedup

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pixelstream/pixelstream/pkg/hit"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// id returns the same UUIDv7-shaped id for the same n: the timestamp
// t0+n ms, then n where the random bits would be.
func id(n int) [16]byte {
	var e [16]byte
	binary.BigEndian.PutUint64(e[0:8], uint64(t0.UnixMilli()+int64(n))<<16|0x7000)
	binary.BigEndian.PutUint64(e[8:16], uint64(n)|0x8000000000000000)
	return e
}

func TestSeen(t *testing.T) {
	const m = time.Minute
	a, b, c := id(1), id(2), id(3)
	type step struct {
		id   [16]byte
		at   time.Duration
		want bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first sighting is new, the second a duplicate", []step{
			{a, 0, false}, {a, 0, true}, {a, time.Second, true},
		}},
		{"distinct ids are not duplicates", []step{
			{a, 0, false}, {b, 0, false}, {c, 0, false}, {b, 0, true},
		}},
		{"the zero id is never a duplicate", []step{
			{[16]byte{}, 0, false}, {[16]byte{}, 0, false},
		}},
		{"an id is remembered through the next generation", []step{
			{a, 0, false},
			{b, 9 * m, false},
			{c, 10 * m, false}, // rotates: a and b move to the old generation
			{a, 15 * m, true},
			{b, 19 * m, true},
		}},
		{"and forgotten after the second rotation", []step{
			{a, 0, false},
			{b, 10 * m, false}, // first rotation
			{c, 20 * m, false}, // second: a's generation is dropped
			{a, 21 * m, false}, // a passes again (and is recorded again)
			{a, 22 * m, true},
			{b, 22 * m, true}, // b is in the previous generation
		}},
		{"an id seen out of order is still found", []step{
			{a, 5 * m, false}, {b, 0, false}, {a, 1 * m, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{Window: 10 * m, MaxIDs: 1000, Now: fixedNow(t0.Add(time.Hour))})
			for n, s := range tt.steps {
				if got := w.Seen(s.id, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d (%x at +%v): Seen = %v, want %v", n, s.id[:6], s.at, got, s.want)
				}
			}
		})
	}
}

func TestStats(t *testing.T) {
	w := New(Config{Window: time.Minute, MaxIDs: 4, Now: fixedNow(t0)})
	w.Seen(id(1), t0)
	w.Seen(id(1), t0)
	w.Seen([16]byte{}, t0)
	w.Seen(id(2), t0)
	w.Seen(id(3), t0)                  // a generation holds MaxIDs/2 = 2: full rotation
	w.Seen(id(4), t0.Add(time.Minute)) // the window has passed: time rotation
	want := Stats{Checked: 5, Duplicates: 1, Unchecked: 1, TimeRotations: 1, FullRotations: 1, Held: 2}
	if got := w.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

// TestBoundedByCount: however many ids arrive at once, at most MaxIDs are
// held, and the latest MaxIDs/2 are always remembered.
func TestBoundedByCount(t *testing.T) {
	const maxIDs = 100
	w := New(Config{Window: time.Hour, MaxIDs: maxIDs, Now: fixedNow(t0)})
	for n := range 10_000 {
		if w.Seen(id(n), t0) {
			t.Fatalf("id %d reported as a duplicate", n)
		}
		if h := w.Stats().Held; h > maxIDs {
			t.Fatalf("%d ids held, max %d", h, maxIDs)
		}
		if n >= maxIDs/2 {
			// The id MaxIDs/2-1 hits ago is still remembered.
			if !w.Seen(id(n-maxIDs/2+1), t0) {
				t.Fatalf("id %d forgotten after %d newer ids", n-maxIDs/2+1, maxIDs/2-1)
			}
		}
	}
	if w.Stats().FullRotations == 0 || w.Stats().TimeRotations != 0 {
		t.Fatalf("stats %+v", w.Stats())
	}
	if w.Seen(id(0), t0) {
		t.Fatal("the first id is still remembered after 10000 others in a window of 100")
	}
	if len(w.cur.slots) != 128 || len(w.old.slots) != 128 {
		t.Fatalf("table sizes %d, %d: want 128 (the power of two at least twice 50)", len(w.cur.slots), len(w.old.slots))
	}
}

// TestRememberedForAWindow checks the guarantee with random traffic: a
// repeat less than Window after the original, with fewer than MaxIDs/2
// ids in between, is always caught.
func TestRememberedForAWindow(t *testing.T) {
	const window = 900 * time.Millisecond // about 9000 hits: less than MaxIDs/2, mostly
	const maxIDs = 20000
	rng := rand.New(rand.NewPCG(5, 6))
	w := New(Config{Window: window, MaxIDs: maxIDs, Now: fixedNow(t0.Add(time.Hour))})
	type sent struct {
		id  [16]byte
		at  time.Time
		seq int
	}
	var history []sent
	at := t0
	for n := range 200_000 {
		at = at.Add(time.Duration(rng.IntN(200)) * time.Microsecond)
		if len(history) > 0 && rng.IntN(10) == 0 { // repeat a recent id
			h := history[len(history)-1-rng.IntN(min(len(history), 5000))]
			if at.Sub(h.at) < window && n-h.seq < maxIDs/2 && !w.Seen(h.id, at) {
				t.Fatalf("a repeat %v and %d ids after the original was missed", at.Sub(h.at), n-h.seq)
			}
			continue
		}
		e := hit.NewEventID(at.UnixNano())
		if w.Seen(e, at) {
			t.Fatalf("new id %x reported as a duplicate", e)
		}
		history = append(history, sent{e, at, n})
	}
	st := w.Stats()
	if st.TimeRotations == 0 {
		t.Fatalf("stats %+v: the run should rotate by time", st)
	}
	t.Logf("stats %+v", st)
}

func TestFutureHitDoesNotRotate(t *testing.T) {
	w := New(Config{Window: 10 * time.Minute, MaxIDs: 1000, Now: fixedNow(t0)})
	w.Seen(id(1), t0)
	w.Seen(id(2), t0.Add(24*time.Hour)) // an edge with a clock a day ahead
	w.Seen(id(3), t0.Add(time.Second))
	w.Seen(id(4), t0.Add(2*time.Second))
	if !w.Seen(id(1), t0.Add(3*time.Second)) {
		t.Fatal("a hit from the future rotated the window")
	}
}

func TestSeenAllocs(t *testing.T) {
	w := New(Config{MaxIDs: 1000, Now: fixedNow(t0)})
	n := 0
	if a := testing.AllocsPerRun(10000, func() {
		n++
		w.Seen(id(n), t0)
	}); a != 0 {
		t.Fatalf("Seen allocates %.2f times per call", a)
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Window: -1}, {MaxIDs: 1}, {MaxIDs: -5}} {
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

// BenchmarkSeen is the common case: every id new, the default size (two
// 16 MiB tables), time advancing 10 µs per hit (100k hits/s).
func BenchmarkSeen(b *testing.B) {
	w := New(Config{})
	ids := make([][16]byte, 1<<20)
	for i := range ids {
		ids[i] = hit.NewEventID(t0.UnixNano() + int64(i)*10_000)
	}
	// Warm: both generations full, as in steady state.
	for i := range DefaultMaxIDs {
		w.Seen(ids[i%len(ids)], t0.Add(time.Duration(i)*10*time.Microsecond))
	}
	b.ReportAllocs()
	n := DefaultMaxIDs
	for b.Loop() {
		n++
		var e [16]byte
		binary.BigEndian.PutUint64(e[8:], uint64(n))
		e[0] = 1
		w.Seen(e, t0.Add(time.Duration(n)*10*time.Microsecond))
	}
}

// BenchmarkSeenDuplicate looks up ids held in the window.
func BenchmarkSeenDuplicate(b *testing.B) {
	w := New(Config{})
	const held = 400_000
	ids := make([][16]byte, held)
	for i := range ids {
		ids[i] = hit.NewEventID(t0.UnixNano() + int64(i)*10_000)
		w.Seen(ids[i], t0)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	b.ReportAllocs()
	for b.Loop() {
		if !w.Seen(ids[rng.IntN(held)], t0) {
			b.Fatal("not a duplicate")
		}
	}
}

func TestCollector(t *testing.T) {
	w := New(Config{MaxIDs: 100, Now: fixedNow(t0)})
	w.Seen(id(1), t0)
	w.Seen(id(1), t0)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(w.Collector()); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(w.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	want := `# HELP pixelstream_enricher_dedup_duplicates_total Hits whose event id was already in the window: dropped as duplicates.
# TYPE pixelstream_enricher_dedup_duplicates_total counter
pixelstream_enricher_dedup_duplicates_total 1
# HELP pixelstream_enricher_dedup_ids Event ids held in the duplicate window.
# TYPE pixelstream_enricher_dedup_ids gauge
pixelstream_enricher_dedup_ids 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pixelstream_enricher_dedup_duplicates_total", "pixelstream_enricher_dedup_ids"); err != nil {
		t.Fatal(err)
	}
}
