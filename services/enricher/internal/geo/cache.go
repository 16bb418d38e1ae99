package geo

import "sync/atomic"

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
