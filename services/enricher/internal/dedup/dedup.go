// Package dedup drops repeated hits by event_id within a bounded window.
//
// Duplicates reach the enricher because kafka-go's producer is not
// idempotent (an edge retry can write a hit twice, usually within seconds)
// and because a restart or rebalance redelivers records whose offsets were
// not committed. A Window remembers recent event ids in two fixed-size hash
// tables (generations) and reports an id it already holds.
//
// Limits, by design (docs/visitors.md): the window is per instance and in
// memory, so a redelivery to another instance after a rebalance, or to this
// one after a restart, passes through; and an id is only remembered for
// about one window. Consumers still deduplicate on event_id; this removes
// the cheap, common part before the duplicates are enriched, sessionised
// and produced.
package dedup

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	// DefaultWindow covers producer retries (seconds) and the redelivery of
	// an uncommitted batch to the same instance with room to spare.
	DefaultWindow = 10 * time.Minute
	// DefaultMaxIDs bounds the window to 1M ids, 32 MB: at 100k hits/s
	// it holds 5 to 10 s, at 1k hits/s the full 10 minutes.
	DefaultMaxIDs = 1_000_000
	// maxFuture is how far ahead of the wall clock a hit time may move the
	// watermark: one hit from an edge with a wrong clock must not rotate
	// the window away.
	maxFuture = time.Minute
)

// Config configures a Window. The zero value uses the defaults.
type Config struct {
	// Window is how long, in event time, an id is remembered at least
	// (unless MaxIDs is reached first): DefaultWindow when 0.
	Window time.Duration
	// MaxIDs bounds memory: at most MaxIDs ids are held, in two generations
	// of MaxIDs/2, each a table of 16-byte slots at most half full (about
	// 32 bytes per id). DefaultMaxIDs when 0.
	MaxIDs int
	// Now is the wall clock, used only to ignore hit times far in the
	// future; time.Now when nil.
	Now func() time.Time
}

// table is an open-addressing hash set of 16-byte ids with linear probing.
// The zero id marks an empty slot (a UUIDv7 is never zero).
type table struct {
	slots [][2]uint64
	mask  uint64
	shift uint8
	n     int
}

func newTable(capacity int) table {
	size := 1 << bits.Len(uint(2*capacity-1)) // a power of two, at least twice capacity
	return table{slots: make([][2]uint64, size), mask: uint64(size - 1), shift: uint8(64 - bits.Len(uint(size-1)))}
}

// home returns the first slot to probe for k. The multiply spreads ids
// that differ only in a few bits (test ids, or the timestamp half) over the
// table; a UUIDv7's random half alone would do.
func (t *table) home(k [2]uint64) uint64 {
	return ((k[0] ^ bits.RotateLeft64(k[1], 29)) * 0x9e3779b97f4a7c15) >> t.shift
}

// containsFrom reports whether k is in t, probing from slot i on.
func (t *table) containsFrom(i uint64, k [2]uint64) bool {
	for ; ; i = (i + 1) & t.mask {
		switch t.slots[i] {
		case k:
			return true
		case [2]uint64{}:
			return false
		}
	}
}

func (t *table) insert(k [2]uint64) {
	i := t.home(k)
	for t.slots[i] != ([2]uint64{}) {
		i = (i + 1) & t.mask
	}
	t.slots[i] = k
	t.n++
}

func (t *table) reset() {
	clear(t.slots)
	t.n = 0
}

// Window remembers recent event ids. An id inserted is remembered until
// the current generation has been rotated out twice: at least one full
// generation, i.e. at least Window of event time (measured on the newest
// hit time seen) or MaxIDs/2 further ids, whichever comes first, and at most
// twice that.
//
// Concurrency: Seen is not safe for concurrent use (the enricher calls it
// from its single pipeline goroutine); Stats and Collector are.
type Window struct {
	window   int64
	genCap   int
	now      func() time.Time
	cur, old table
	genStart int64 // watermark when cur was started
	mark     int64 // watermark: newest hit time seen, Unix ns
	started  bool  // a hit has set the watermark

	checked    atomic.Uint64
	duplicates atomic.Uint64
	unchecked  atomic.Uint64
	rotTime    atomic.Uint64
	rotFull    atomic.Uint64
	held       atomic.Int64
}

// New returns an empty Window. It allocates both tables up front (about
// 32 bytes per id of MaxIDs) so that Seen never allocates. It panics on a
// negative Window or MaxIDs below 2 after defaults: configuration is
// validated before this is called.
func New(cfg Config) *Window {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxIDs == 0 {
		cfg.MaxIDs = DefaultMaxIDs
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Window < 0 || cfg.MaxIDs < 2 || cfg.MaxIDs > 1<<32 {
		panic("dedup: invalid Config")
	}
	gen := cfg.MaxIDs / 2
	return &Window{
		window: int64(cfg.Window),
		genCap: gen,
		now:    cfg.Now,
		cur:    newTable(gen),
		old:    newTable(gen),
	}
}

// Seen reports whether id was already seen within the window (true: a
// duplicate, drop the hit) and otherwise records it. at is the hit's
// received_at; it drives the window's rotation. The zero id is never
// recorded and never a duplicate (counted as unchecked). It does not
// allocate.
func (w *Window) Seen(id [16]byte, at time.Time) bool {
	k := [2]uint64{binary.LittleEndian.Uint64(id[0:8]), binary.LittleEndian.Uint64(id[8:16])}
	if k == ([2]uint64{}) {
		w.unchecked.Add(1)
		return false
	}
	w.advance(at.UnixNano())
	w.checked.Add(1)
	if w.contains(k) {
		w.duplicates.Add(1)
		return true
	}
	switch {
	case w.cur.n >= w.genCap:
		w.rotate()
		w.rotFull.Add(1)
	case w.mark-w.genStart >= w.window:
		w.rotate()
		w.rotTime.Add(1)
	}
	w.cur.insert(k)
	w.held.Store(int64(w.cur.n + w.old.n))
	return false
}

// advance moves the watermark, never more than maxFuture past the wall
// clock; the first hit starts the first generation.
func (w *Window) advance(now int64) {
	if !w.started {
		w.started = true
		w.mark = min(now, w.now().UnixNano()+int64(maxFuture))
		w.genStart = w.mark
		return
	}
	if now <= w.mark {
		return
	}
	if now-w.mark > int64(maxFuture) {
		if limit := w.now().UnixNano() + int64(maxFuture); now > limit {
			now = max(limit, w.mark)
		}
	}
	w.mark = now
}

// contains looks k up in both generations. They have the same size, so k's
// home slot is the same in both; loading both home slots before comparing
// lets the CPU wait for the two cache misses at once instead of one after
// the other (most ids are new and must be looked up in both).
func (w *Window) contains(k [2]uint64) bool {
	i := w.cur.home(k)
	a, b := w.cur.slots[i], w.old.slots[i]
	switch {
	case a == k || b == k:
		return true
	case a != [2]uint64{} && w.cur.containsFrom((i+1)&w.cur.mask, k):
		return true
	case b != [2]uint64{} && w.old.containsFrom((i+1)&w.old.mask, k):
		return true
	}
	return false
}

// rotate drops the old generation and starts a new one. Clearing a table
// is a memclr of its slots: a few milliseconds for the default size, once
// per window or per MaxIDs/2 hits.
func (w *Window) rotate() {
	w.cur, w.old = w.old, w.cur
	w.cur.reset()
	w.genStart = w.mark
}

// Stats are a Window's counters since New.
type Stats struct {
	// Checked counts ids looked up; Duplicates those already held.
	Checked, Duplicates uint64
	// Unchecked counts hits with the zero event id (never deduplicated).
	Unchecked uint64
	// TimeRotations counts generations ended by the window's duration;
	// FullRotations those ended because MaxIDs/2 ids filled one, which
	// means ids were remembered for less than Window: raise MaxIDs if it
	// grows steadily.
	TimeRotations, FullRotations uint64
	// Held is the number of ids held.
	Held int64
}

// Stats returns the counters; safe from any goroutine.
func (w *Window) Stats() Stats {
	return Stats{
		Checked:       w.checked.Load(),
		Duplicates:    w.duplicates.Load(),
		Unchecked:     w.unchecked.Load(),
		TimeRotations: w.rotTime.Load(),
		FullRotations: w.rotFull.Load(),
		Held:          w.held.Load(),
	}
}
