// Package session groups one visitor's hits into sessions: a session ends
// after Timeout (30 minutes by default) without a hit from that visitor,
// measured on the hits' received_at times (event time), so that a replay or
// consumer lag does not split or merge sessions differently from live
// processing.
//
// The state is in memory, per enricher instance, bounded by MaxSessions.
// The edge keys raw hits by a hash of (project, IP, User-Agent), so while an
// instance owns a partition it sees all the hits of the visitors on it; a
// rebalance or restart starts new sessions for visitors whose earlier hits
// the instance did not see (docs/visitors.md).
package session

import (
	"sync/atomic"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/services/enricher/internal/visitor"
)

// Defaults of Config.
const (
	// DefaultTimeout is the inactivity that ends a session, as in
	// Plausible and GA4.
	DefaultTimeout = 30 * time.Minute
	// DefaultMaxSessions caps the sessions held: about 130 MB when full
	// (memory grows with use, not up front).
	DefaultMaxSessions = 1_000_000
	// maxFuture is how far ahead of the wall clock a hit time may move the
	// watermark: one hit from an edge with a wrong clock must not make every
	// open session look idle.
	maxFuture = time.Minute
)

// Config configures a Tracker. The zero value uses the defaults.
type Config struct {
	// Timeout ends a session: a hit more than Timeout after the visitor's
	// previous one (exactly Timeout included) starts a new session.
	// DefaultTimeout when 0.
	Timeout time.Duration
	// IdleRetention is how long a session stays in memory after its last
	// hit, measured against the newest hit time the tracker has seen (the
	// watermark). It must be at least Timeout; the extra tolerates the
	// partitions of one instance lagging behind each other by up to
	// IdleRetention-Timeout without splitting the lagging partition's
	// sessions. 2*Timeout when 0.
	IdleRetention time.Duration
	// MaxSessions caps the sessions held. When full, the least recently
	// active session is evicted (counted): its visitor's next hit starts a
	// new session. DefaultMaxSessions when 0. About 130 bytes each.
	MaxSessions int
	// Now is the wall clock, used only to ignore hit times far in the
	// future; time.Now when nil.
	Now func() time.Time
}

// slot is one open session. Slots live in a slab, found through the index
// map, so the tracker allocates nothing per hit once warm.
type slot struct {
	key      visitor.ID  // the visitor id the session is known by now
	alias    visitor.ID  // the previous day's id after a midnight rekey
	session  hit.EventID // event id of the session's first hit: the session id
	last     int64       // received_at of the latest hit, Unix ns
	seq      uint32      // hits in the session so far
	nextFree int32       // free-list link while the slot is unused
	used     bool
	hasAlias bool
	ref      bool // a hit continued the session since the clock hand last passed
}

const none = -1

// sweepPerHit is how many slots the clock hand inspects for idle sessions
// per Observe: a full pass takes len(slots)/sweepPerHit hits, and reading a
// few consecutive slots costs little next to the hit's own map lookup.
const sweepPerHit = 4

// Tracker assigns session ids, session starts and sequence numbers.
//
// Memory is bounded two ways, without a linked list (whose neighbour
// updates would cost cache misses on every hit): a clock hand sweeps the
// slots a few per hit and removes sessions idle for IdleRetention, and
// when MaxSessions are held a new session takes the slot of one the hand
// finds idle or, failing that, of one without a hit since the hand last
// passed (the CLOCK approximation of least recently active).
//
// Concurrency: Observe is not safe for concurrent use; the enricher calls it
// from its single pipeline goroutine, in the partition order of the batch.
// Stats and Collector may be used from any goroutine.
type Tracker struct {
	timeout   int64
	retention int64
	max       int
	now       func() time.Time
	index     map[visitor.ID]int32
	slots     slab
	free      int32 // head of the free list
	count     int   // sessions held
	hand      int   // clock hand: next slot to inspect
	watermark int64

	open      atomic.Int64
	started   atomic.Uint64
	continued atomic.Uint64
	rekeyed   atomic.Uint64
	expired   atomic.Uint64
	evicted   atomic.Uint64
	late      atomic.Uint64
}

// New returns an empty Tracker. It panics on a negative Timeout, a
// MaxSessions below 1 (after defaults) or above 2^30, or an IdleRetention
// shorter than Timeout: configuration is validated before this is called.
func New(cfg Config) *Tracker {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.IdleRetention == 0 {
		cfg.IdleRetention = 2 * cfg.Timeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout < 0 || cfg.MaxSessions < 1 || cfg.IdleRetention < cfg.Timeout || cfg.MaxSessions > 1<<30 {
		panic("session: invalid Config")
	}
	return &Tracker{
		timeout:   int64(cfg.Timeout),
		retention: int64(cfg.IdleRetention),
		max:       cfg.MaxSessions,
		now:       cfg.Now,
		index:     make(map[visitor.ID]int32, min(cfg.MaxSessions, 1024)),
		free:      none,
	}
}

// Timeout returns the session timeout in use.
func (t *Tracker) Timeout() time.Duration { return time.Duration(t.timeout) }

// NeedsPrevious reports whether a hit received at at could continue a
// session from the previous UTC day, i.e. whether at is less than Timeout
// after 00:00 UTC. Only then does the caller need to compute the visitor's
// id under yesterday's salt for Observe, which saves a second hash for the
// rest of the day.
func (t *Tracker) NeedsPrevious(at time.Time) bool {
	return at.UnixNano()-visitor.DayOf(at).Start().UnixNano() < t.timeout
}

// Observe records a hit of visitor v received at at with event id event,
// and returns the hit's session id (the event id of the session's first
// hit), whether the hit starts the session, and its 1-based sequence number
// in the session.
//
// prev is the visitor's id under the previous day's salt, or the zero ID:
// when v has no open session but prev has one, that session continues and
// is known by v from then on (and still by prev, for late hits of the
// previous day), so sessions span midnight although the visitor id
// changes. Pass it when NeedsPrevious(at).
//
// A hit continues a session when it is less than Timeout after the
// session's latest hit. A hit earlier than the latest one (out of order)
// continues it if it is less than Timeout before it; one older still is
// reported as a one-hit session without touching the open one. Call Observe
// once per hit: duplicates must be filtered before (package dedup), or they
// count twice in seq. It does not allocate once the tracker is warm.
func (t *Tracker) Observe(v, prev visitor.ID, event hit.EventID, at time.Time) (session hit.EventID, start bool, seq int) {
	now := at.UnixNano()
	t.advance(now)
	defer t.sweep(sweepPerHit)

	i, found := t.index[v]
	if found {
		switch t.gap(i, now) {
		case inSession:
			return t.extend(i, now)
		case tooOld:
			t.late.Add(1)
			return event, true, 1
		}
	}
	if !prev.IsZero() && prev != v {
		if j, ok := t.index[prev]; ok {
			switch t.gap(j, now) {
			case inSession:
				if found {
					t.remove(i) // v's own session has ended; the one from yesterday goes on
				}
				t.rekey(j, v, prev)
				t.rekeyed.Add(1)
				return t.extend(j, now)
			case tooOld:
				if !found {
					t.late.Add(1)
					return event, true, 1
				}
			}
		}
	}
	if found { // v's session has ended: its slot starts the new one
		t.dropAlias(i)
	} else {
		i = t.alloc()
		t.index[v] = i
	}
	s := t.slots.at(i)
	s.key, s.session, s.last, s.seq, s.ref = v, event, now, 1, false
	t.started.Add(1)
	return event, true, 1
}

type gapKind uint8

const (
	inSession gapKind = iota // within Timeout of the latest hit
	ended                    // Timeout or more after it: a new session
	tooOld                   // Timeout or more before it: an old straggler
)

func (t *Tracker) gap(i int32, now int64) gapKind {
	d := now - t.slots.at(i).last
	switch {
	case d >= t.timeout:
		return ended
	case d <= -t.timeout:
		return tooOld
	}
	return inSession
}

func (t *Tracker) extend(i int32, now int64) (hit.EventID, bool, int) {
	s := t.slots.at(i)
	s.seq++
	s.ref = true
	if now > s.last {
		s.last = now
	}
	t.continued.Add(1)
	return s.session, false, int(s.seq)
}

// rekey makes slot j known by v, keeping prev as an alias and dropping any
// other id it was known by.
func (t *Tracker) rekey(j int32, v, prev visitor.ID) {
	s := t.slots.at(j)
	if s.key != prev {
		delete(t.index, s.key)
	}
	if s.hasAlias && s.alias != prev {
		delete(t.index, s.alias)
	}
	s.key, s.alias, s.hasAlias = v, prev, true
	t.index[v] = j
}

func (t *Tracker) dropAlias(i int32) {
	s := t.slots.at(i)
	if s.hasAlias {
		delete(t.index, s.alias)
		s.hasAlias, s.alias = false, visitor.ID{}
	}
}

// advance moves the watermark (the newest hit time seen), never more than
// maxFuture past the wall clock.
func (t *Tracker) advance(now int64) {
	if now <= t.watermark {
		return
	}
	if now-t.watermark > int64(maxFuture) { // a jump: check it against the wall clock
		if limit := t.now().UnixNano() + int64(maxFuture); now > limit {
			now = max(limit, t.watermark)
		}
	}
	t.watermark = now
}

// idle reports whether slot i's latest hit is IdleRetention or more behind
// the watermark.
func (t *Tracker) idle(i int) bool { return t.slots.at(int32(i)).last+t.retention <= t.watermark }

// sweep moves the clock hand over n slots, removing idle sessions.
func (t *Tracker) sweep(n int) {
	if t.slots.n == 0 {
		return
	}
	for range min(n, t.slots.n) {
		if t.hand >= t.slots.n {
			t.hand = 0
		}
		if t.slots.at(int32(t.hand)).used && t.idle(t.hand) {
			t.remove(int32(t.hand))
			t.expired.Add(1)
		}
		t.hand++
	}
}

// alloc returns a free slot. When MaxSessions are held it moves the clock
// hand to the first session that is idle or has had no hit since the hand
// last passed (clearing the mark of those that had), and reuses its slot.
func (t *Tracker) alloc() int32 {
	if t.count >= t.max {
		for {
			if t.hand >= t.slots.n {
				t.hand = 0
			}
			h := t.hand
			t.hand++
			s := t.slots.at(int32(h))
			switch {
			case !s.used:
				continue
			case t.idle(h):
				t.expired.Add(1)
			case s.ref:
				s.ref = false
				continue
			default:
				t.evicted.Add(1)
			}
			t.remove(int32(h))
			break
		}
	}
	var i int32
	if t.free != none {
		i = t.free
		t.free = t.slots.at(i).nextFree
	} else {
		i = t.slots.grow(t.max)
	}
	*t.slots.at(i) = slot{used: true, nextFree: none}
	t.count++
	t.open.Store(int64(t.count))
	return i
}

// remove forgets slot i and its ids.
func (t *Tracker) remove(i int32) {
	s := t.slots.at(i)
	delete(t.index, s.key)
	if s.hasAlias {
		delete(t.index, s.alias)
	}
	*s = slot{nextFree: t.free}
	t.free = i
	t.count--
	t.open.Store(int64(t.count))
}

// chunkBits sets the slots per chunk of a slab (4,096, ~300 KB).
const chunkBits = 12

// slab holds the slots in fixed-size chunks. Growing adds a chunk rather
// than copying every slot into an array twice the size: with one slice, a
// tracker filling towards a million sessions copied and discarded ~160 MB
// on the way (2.4 % of the enricher's CPU in memmove, and garbage that
// brought collections forward).
type slab struct {
	chunks [][]slot
	n      int // slots in use: the first n of the chunks
}

// at returns slot i, which must be below n.
func (s *slab) at(i int32) *slot { return &s.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// grow adds a zero slot and returns its index. max bounds the slots ever
// grown, so a small tracker's only chunk is no larger than it needs.
func (s *slab) grow(max int) int32 {
	if s.n == len(s.chunks)<<chunkBits {
		s.chunks = append(s.chunks, make([]slot, min(1<<chunkBits, max)))
	}
	s.n++
	return int32(s.n - 1)
}

// Stats are a Tracker's counters since New.
type Stats struct {
	// Open is the number of sessions held.
	Open int64
	// Started counts hits that started a session; Continued those that
	// continued one.
	Started, Continued uint64
	// Rekeyed counts sessions continued under a new visitor id after
	// midnight (found by the previous day's id).
	Rekeyed uint64
	// Expired counts sessions removed after IdleRetention without a hit.
	Expired uint64
	// Evicted counts sessions removed to stay within MaxSessions while they
	// might still have continued: each may split a session.
	Evicted uint64
	// Late counts hits older than their visitor's open session by Timeout
	// or more, reported as one-hit sessions.
	Late uint64
}

// Stats returns the counters; safe from any goroutine.
func (t *Tracker) Stats() Stats {
	return Stats{
		Open:      t.open.Load(),
		Started:   t.started.Load(),
		Continued: t.continued.Load(),
		Rekeyed:   t.rekeyed.Load(),
		Expired:   t.expired.Load(),
		Evicted:   t.evicted.Load(),
		Late:      t.late.Load(),
	}
}
