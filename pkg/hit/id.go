package hit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// EventID is a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 12 bits
// of sub-millisecond time, so ids sort by receive time, then 62 random bits.
type EventID [16]byte

// NewEventID returns a fresh UUIDv7 for a hit received at unixNano. It draws
// randomness from the runtime's per-thread generator so it neither locks nor
// allocates on the edge's hot path.
func NewEventID(unixNano int64) EventID {
	var id EventID
	ms := uint64(unixNano / 1e6)
	// 12 bits of the remaining nanoseconds, scaled to 0..4095 (RFC 9562 §6.2 method 3).
	sub := uint64(unixNano%1e6) * 4096 / 1e6
	binary.BigEndian.PutUint64(id[0:8], ms<<16|0x7000|sub&0x0fff)
	binary.BigEndian.PutUint64(id[8:16], rand.Uint64()&0x3fffffffffffffff|0x8000000000000000)
	return id
}

// IsZero reports whether id is unset.
func (id EventID) IsZero() bool { return id == EventID{} }

// UnixMilli returns the millisecond timestamp stored in a UUIDv7.
func (id EventID) UnixMilli() int64 { return int64(binary.BigEndian.Uint64(id[0:8]) >> 16) }

// AppendString appends the canonical 36-character form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) to b.
func (id EventID) AppendString(b []byte) []byte {
	var s [36]byte
	hex.Encode(s[0:8], id[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], id[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], id[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], id[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], id[10:16])
	return append(b, s[:]...)
}

// String returns the canonical UUID form.
func (id EventID) String() string { return string(id.AppendString(make([]byte, 0, 36))) }

// ParseEventID parses the canonical UUID form produced by String.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, errors.New("event id: want 36-character UUID")
	}
	hx := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(hx)); err != nil {
		return id, errors.New("event id: bad hex")
	}
	return id, nil
}

// VisitorKeySize is the length of a visitor key in bytes.
const VisitorKeySize = 16

// AppendVisitorKey appends the Kafka record key for a visitor: 16 hex digits
// of a 64-bit xxHash (XXH64, seed 0) over the project's length and bytes,
// the IP as 16 bytes and the User-Agent. It is a partition key, not an
// identifier: it is stable across replicas and restarts so one visitor's
// hits stay on one partition, and it is deliberately short so it reveals
// little. Allocation-free. (FNV-1a, byte by byte, cost the edge 0.34 µs per
// hit, 2 % of its CPU at full load; xxHash reads 8 bytes at a time.)
func AppendVisitorKey(b []byte, project []byte, ip netip.Addr, ua []byte) []byte {
	var d xxhash.Digest
	d.Reset()
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(project)))
	_, _ = d.Write(n[:])
	_, _ = d.Write(project)
	a := ip.As16()
	_, _ = d.Write(a[:])
	_, _ = d.Write(ua)
	var x [8]byte
	binary.BigEndian.PutUint64(x[:], d.Sum64())
	var out [VisitorKeySize]byte
	hex.Encode(out[:], x[:])
	return append(b, out[:]...)
}
