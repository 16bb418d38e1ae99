// Package clockcache is a bounded, sharded, concurrent cache keyed by
// strings, for the enricher's per-User-Agent results: a few keys are seen
// again and again and a long tail only once.
//
// Each shard is a CLOCK (second-chance) cache: a hit only sets an atomic
// "referenced" bit under a read lock, and eviction sweeps a hand over the
// entries, sparing those referenced since the last sweep. Hits never take a
// write lock (an LRU must relink a list under an exclusive lock on every
// hit), and one-off keys, inserted unreferenced, are the first to go.
package clockcache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// shards spreads the cache over independent locks so that cores do not
// contend on one mutex for every lookup.
const shards = 16

// Cache maps strings to values of type V. It is safe for concurrent use.
type Cache[V any] struct {
	seed   maphash.Seed
	shards [shards]shard[V]
}

type shard[V any] struct {
	mu      sync.RWMutex
	index   map[string]int32 // key → position in entries
	entries []entry[V]
	limit   int
	hand    int

	hits, misses atomic.Uint64
	// Keep shards (and their counters) on separate cache lines.
	_ [64]byte
}

type entry[V any] struct {
	key        string
	val        V
	referenced atomic.Bool
}

// New returns a cache holding about size entries (at least one per shard).
// Memory grows with use: a large cache that is never filled costs little.
func New[V any](size int) *Cache[V] {
	c := &Cache[V]{seed: maphash.MakeSeed()}
	per := max((size+shards-1)/shards, 1)
	for i := range c.shards {
		c.shards[i].limit = per
		c.shards[i].index = make(map[string]int32)
	}
	return c
}

// Get copies the value cached for key into out and reports whether there
// was one. It does not allocate: the compiler turns index[string(key)] into
// a lookup without a conversion.
func (c *Cache[V]) Get(key []byte, out *V) bool {
	s := &c.shards[maphash.Bytes(c.seed, key)%shards]
	s.mu.RLock()
	i, ok := s.index[string(key)]
	if ok {
		e := &s.entries[i]
		// Load first: storing on every hit would bounce the cache line
		// between cores for entries that are already marked.
		if !e.referenced.Load() {
			e.referenced.Store(true)
		}
		*out = e.val
	}
	s.mu.RUnlock()
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return ok
}

// Put stores a copy of *v under key (the caller passes an owned string, not
// one aliasing a reused buffer), evicting an entry not referenced since the
// hand last passed it when the shard is full.
func (c *Cache[V]) Put(key string, v *V) {
	s := &c.shards[maphash.String(c.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[key]; ok { // another goroutine computed it meanwhile
		s.entries[i].val = *v
		return
	}
	if len(s.entries) < s.limit {
		s.entries = append(s.entries, entry[V]{key: key, val: *v})
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
		e.key, e.val = key, *v
		s.index[key] = int32(i)
		return
	}
}

// Stats returns how many Gets found a value and how many did not.
func (c *Cache[V]) Stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// Len returns the number of cached entries.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
