package classify

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cacheShards spreads the verdict cache over independent locks so that the
// enricher's workers do not contend on one mutex for every record.
const cacheShards = 16

// uaVerdict is everything about a record that depends on the User-Agent
// alone, and so can be cached per User-Agent. The IP-dependent part (Apple
// Mail Privacy Protection) is decided outside the cache from mppCandidate.
type uaVerdict struct {
	isBot      bool
	botName    string
	emailProxy string // proxies recognizable from the User-Agent alone
	// mppCandidate marks the User-Agents Apple's Mail Privacy Protection
	// proxy sends ("Mozilla/5.0" alone, or Apple Mail's bare WebKit
	// string). Whether a hit is an MPP fetch also depends on the IP.
	mppCandidate bool
}

// verdictCache maps whole User-Agent strings to verdicts. Like the device
// package's cache it is a sharded CLOCK (second-chance) cache: a hit only
// sets an atomic "referenced" bit under a read lock, so hits on the few
// common User-Agents never take a write lock, and the long tail of one-off
// User-Agents (inserted unreferenced) is evicted first.
type verdictCache struct {
	seed   maphash.Seed
	shards [cacheShards]verdictShard
}

type verdictShard struct {
	mu      sync.RWMutex
	index   map[string]int32 // key → position in entries
	entries []verdictEntry
	limit   int
	hand    int

	hits, misses atomic.Uint64
	// Keep shards (and their counters) on separate cache lines.
	_ [64]byte
}

type verdictEntry struct {
	key        string
	v          uaVerdict
	referenced atomic.Bool
}

func newVerdictCache(size int) *verdictCache {
	c := &verdictCache{seed: maphash.MakeSeed()}
	per := (size + cacheShards - 1) / cacheShards
	if per < 1 {
		per = 1
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = per
		// Grown on demand: a large cache that is never filled (tests,
		// small sites) should not cost its full size up front.
		s.index = make(map[string]int32)
	}
	return c
}

func (c *verdictCache) shard(key []byte) *verdictShard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

// get copies the cached verdict for key into out. It does not allocate: the
// compiler turns index[string(key)] into a lookup without a conversion.
func (c *verdictCache) get(key []byte, out *uaVerdict) bool {
	s := c.shard(key)
	s.mu.RLock()
	i, ok := s.index[string(key)]
	if ok {
		e := &s.entries[i]
		// Load first: storing on every hit would bounce the cache line
		// between cores for entries that are already marked.
		if !e.referenced.Load() {
			e.referenced.Store(true)
		}
		*out = e.v
	}
	s.mu.RUnlock()
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return ok
}

// put stores v for key, evicting an entry not referenced since the hand last
// passed it when the shard is full.
func (c *verdictCache) put(key string, v *uaVerdict) {
	s := &c.shards[maphash.String(c.seed, key)%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[key]; ok { // another worker computed it meanwhile
		s.entries[i].v = *v
		return
	}
	if len(s.entries) < s.limit {
		s.entries = append(s.entries, verdictEntry{key: key, v: *v})
		s.index[key] = int32(len(s.entries) - 1)
		return
	}
	// Every pass clears the bits it skips, so this ends within two laps.
	for {
		i := s.hand
		e := &s.entries[i]
		s.hand = (s.hand + 1) % len(s.entries)
		if e.referenced.Load() {
			e.referenced.Store(false)
			continue
		}
		delete(s.index, e.key)
		e.key, e.v = key, *v
		s.index[key] = int32(i)
		return
	}
}

func (c *verdictCache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

func (c *verdictCache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
