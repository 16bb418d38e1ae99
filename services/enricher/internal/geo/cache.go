package geo

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// cacheBits sets cacheSlots, the number of decoded records kept per
// database. Visitors concentrate on a few thousand city records (and fewer
// ASNs), but a site with a worldwide audience reaches tens of thousands,
// and a slot costs one pointer when empty: 16 Ki slots hold most of the
// traffic for 128 KiB plus the entries (~250 bytes each).
const (
	cacheBits  = 14
	cacheSlots = 1 << cacheBits
)

// recordCache maps a record's data-section offset to its decoded value. A
// lookup that hits skips the ~0.8 µs reflection decode: the tree walk alone
// costs ~0.1 µs.
//
// It is direct-mapped and lock-free: each slot holds an immutable entry
// behind an atomic pointer, and a colliding record simply replaces it. There
// is nothing to evict, no lock to contend on across cores, and readers can
// never see a half-written entry.
type recordCache[T any] struct {
	slots [cacheSlots]atomic.Pointer[cacheEntry[T]]
}

type cacheEntry[T any] struct {
	offset uintptr
	value  T
}

func slot(offset uintptr) uintptr {
	// Records are laid out one after another, so low bits of neighbouring
	// offsets are correlated; Fibonacci hashing spreads them over the slots.
	return uintptr((uint64(offset) * 0x9E3779B97F4A7C15) >> (64 - cacheBits))
}

// get returns the cached value for offset, or nil. The value must not be
// modified: it is shared by every reader.
func (c *recordCache[T]) get(offset uintptr) *T {
	if e := c.slots[slot(offset)].Load(); e != nil && e.offset == offset {
		return &e.value
	}
	return nil
}

// put stores a copy of value for offset and returns the stored copy, which
// must not be modified either.
func (c *recordCache[T]) put(offset uintptr, value T) *T {
	e := &cacheEntry[T]{offset: offset, value: value}
	c.slots[slot(offset)].Store(e)
	return &e.value
}

// ipCacheBits sets the number of addresses whose answers are remembered.
// A visitor's pageviews arrive from one address within minutes, so most
// lookups repeat a recent one; 64 Ki slots cover the visitors of the last
// minutes of a busy site for 512 KiB plus ~48 bytes per entry.
const (
	ipCacheBits  = 16
	ipCacheSlots = 1 << ipCacheBits
)

// ipCache maps an address to the decoded records found for it, so that a
// returning address skips both tree walks (~0.3–0.7 µs of cache-missing
// reads in the 60 MB City database) as well as the record caches. Like
// recordCache it is direct-mapped, lock-free and holds immutable entries.
//
// Each slot keeps the address's hash beside the entry pointer, in the same
// cache line: a new address, whose hash differs from the slot's, costs one
// memory read instead of two (the slot and then the entry behind it).
type ipCache struct {
	slots [ipCacheSlots]ipSlot
}

type ipSlot struct {
	hash atomic.Uint64
	e    atomic.Pointer[ipEntry]
}

// ipEntry is what Lookup found for ip; nil means not in that database.
type ipEntry struct {
	ip   netip.Addr
	city *Result
	asn  *asnRecord
}

func ipHash(ip netip.Addr) uint64 {
	a := ip.As16()
	hi := binary.LittleEndian.Uint64(a[:8])
	lo := binary.LittleEndian.Uint64(a[8:])
	// An IPv4 address varies only in lo's upper half; multiplying by odd
	// constants and keeping the top bits for the slot mixes every input
	// bit into it.
	return (hi*0x9E3779B97F4A7C15 ^ lo) * 0xBF58476D1CE4E5B9
}

func (c *ipCache) slot(h uint64) *ipSlot { return &c.slots[h>>(64-ipCacheBits)] }

// get returns the entry for ip, or nil. The hash and the pointer are
// written one after the other, so a reader may see one with the other's
// predecessor; comparing the entry's own address settles it.
func (c *ipCache) get(ip netip.Addr) *ipEntry {
	h := ipHash(ip)
	s := c.slot(h)
	if s.hash.Load() != h {
		return nil
	}
	if e := s.e.Load(); e != nil && e.ip == ip {
		return e
	}
	return nil
}

func (c *ipCache) put(e *ipEntry) {
	h := ipHash(e.ip)
	s := c.slot(h)
	s.e.Store(e)
	s.hash.Store(h)
}
