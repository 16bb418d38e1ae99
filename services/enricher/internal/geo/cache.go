package geo

import (
	"encoding/binary"
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

// put stores a copy of value for offset.
func (c *recordCache[T]) put(offset uintptr, value T) {
	c.slots[slot(offset)].Store(&cacheEntry[T]{offset: offset, value: value})
}

// ipSlots is the number of client addresses whose tree-walk results are
// remembered. Most hits come from visitors seen minutes earlier (in the
// realistic bench mix two in three), and walking the City and ASN trees
// (up to 128 dependent reads of a file far larger than the CPU caches)
// cost 6 % of the enricher's CPU in profiles. 64 Ki slots of one pointer
// each plus their entries cost ~3.5 MiB.
const ipSlots = 1 << 16

// noRecord marks an address a database has no record for.
const noRecord = ^uintptr(0)

// ipCache maps an address to its records' offsets in the City and ASN
// databases; like recordCache it is direct-mapped and lock-free.
type ipCache struct {
	slots [ipSlots]atomic.Pointer[ipEntry]
}

type ipEntry struct {
	ip        [16]byte
	city, asn uintptr // data offsets, or noRecord
}

func ipSlot(ip *[16]byte) uint64 {
	hi := binary.LittleEndian.Uint64(ip[:8])
	lo := binary.LittleEndian.Uint64(ip[8:])
	return ((hi ^ lo*0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9) >> (64 - 16)
}

// get returns the offsets cached for ip.
func (c *ipCache) get(ip *[16]byte) (city, asn uintptr, ok bool) {
	if e := c.slots[ipSlot(ip)].Load(); e != nil && e.ip == *ip {
		return e.city, e.asn, true
	}
	return 0, 0, false
}

// put remembers ip's offsets.
func (c *ipCache) put(ip *[16]byte, city, asn uintptr) {
	c.slots[ipSlot(ip)].Store(&ipEntry{ip: *ip, city: city, asn: asn})
}
