package device

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cacheShards spreads the cache over independent locks so that cores do not
// contend on one mutex (and one reader counter) for every event.
const cacheShards = 16

// cache maps whole User-Agent strings to finished Results.
//
// Each shard is a CLOCK (second-chance) cache: a hit only sets an atomic
// "referenced" bit under the read lock, and eviction sweeps a hand over the
// entries, sparing those referenced since the last sweep. That keeps hits
// read-only with respect to the structure (an LRU must relink a list, under
// an exclusive lock, on every hit) and keeps the User-Agents seen again and
// again in the cache while one-off User-Agents, inserted unreferenced, are
// the first to go.
type cache struct {
	seed   maphash.Seed
	shards [cacheShards]shard
}

type shard struct {
	mu      sync.RWMutex
	index   map[string]int32 // key → position in entries
	entries []entry
	limit   int
	hand    int

	hits, misses atomic.Uint64
	// Keep shards (and their counters) on separate cache lines.
	_ [64]byte
}

type entry struct {
	key        string
	res        Result
	referenced atomic.Bool
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed()}
	per := (size + cacheShards - 1) / cacheShards
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = per
		s.index = make(map[string]int32, per)
		s.entries = make([]entry, 0, per)
	}
	return c
}

func (c *cache) shard(key []byte) *shard {
	return &c.shards[maphash.Bytes(c.seed, key)%cacheShards]
}

// shardString is shard for a string key; maphash.String and maphash.Bytes
// hash equal contents equally.
func (c *cache) shardString(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

// get copies the cached Result for key into out and reports whether there
// was one. It does not allocate: the compiler turns index[string(key)] into
// a lookup without a conversion.
func (c *cache) get(key []byte, out *Result) bool {
	s := c.shard(key)
	s.mu.RLock()
	i, ok := s.index[string(key)]
	if ok {
		e := &s.entries[i]
		// Load first: writing the bit on every hit would bounce the cache
		// line between cores for entries that are already marked.
		if !e.referenced.Load() {
			e.referenced.Store(true)
		}
		*out = e.res
	}
	s.mu.RUnlock()
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
	return ok
}

// put stores res for key, evicting an entry not referenced since the hand
// last passed it when the shard is full.
func (c *cache) put(key string, res *Result) {
	s := c.shardString(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.index[key]; ok { // another worker parsed it meanwhile
		s.entries[i].res = *res
		return
	}
	if len(s.entries) < s.limit {
		s.entries = append(s.entries, entry{key: key, res: *res})
		s.index[key] = int32(len(s.entries) - 1)
		return
	}
	// Every pass clears the bits it skips, so this ends within two laps.
	for {
		e := &s.entries[s.hand]
		i := s.hand
		s.hand = (s.hand + 1) % len(s.entries)
		if e.referenced.Load() {
			e.referenced.Store(false)
			continue
		}
		delete(s.index, e.key)
		e.key, e.res = key, *res
		s.index[key] = int32(i)
		return
	}
}

func (c *cache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// size returns the number of cached entries.
func (c *cache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.index)
		s.mu.RUnlock()
	}
	return n
}
