// Package visitor computes cookieless visitor ids the way Plausible does: a
// keyed hash of (project, IP, User-Agent) under a salt that rotates daily at
// 00:00 UTC and is deleted after at most 48 hours, so that nobody, including
// the operator, can recompute a visitor id from an IP address and a
// User-Agent once the salt is gone.
//
// Every enricher instance must use the same salt on the same day, or one
// visitor would get different ids depending on which instance processed the
// hit. [SaltStore] agrees on the salt through a single-partition Kafka topic
// (no extra service): the first record for a day's key, in offset order, is
// that day's salt everywhere. docs/visitors.md describes the protocol, the
// fallbacks and the privacy bound.
package visitor

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"

	"github.com/dchest/siphash"
)

// SaltSize is the length of a salt in bytes: 32 random bytes, two 128-bit
// SipHash keys.
const SaltSize = 32

// IDSize is the length of a visitor id in bytes (128 bits: collisions among
// a project's visitors of a day are negligible even at billions of visitors).
const IDSize = 16

// HexLen is the length of a visitor id in its text form: 32 lower-case hex
// digits.
const HexLen = 2 * IDSize

// ID is a visitor id: the 128-bit keyed hash of (project, IP, User-Agent)
// under a day's salt. It is a fixed-size value so that the session tracker
// can key its map with it without allocating.
type ID [IDSize]byte

// IsZero reports whether id is unset. A computed id is zero with
// probability 2^-128, so the zero value can mean "none".
func (id ID) IsZero() bool { return id == ID{} }

// AppendHex appends the 32 lower-case hex digits of id to dst.
func (id ID) AppendHex(dst []byte) []byte {
	var s [HexLen]byte
	hex.Encode(s[:], id[:])
	return append(dst, s[:]...)
}

// String returns the 32 hex digits of id, the form written as visitor_id.
func (id ID) String() string { return string(id.AppendHex(make([]byte, 0, HexLen))) }

// key is a salt expanded into the two SipHash keys it holds, so that the hot
// path does no decoding.
type key struct {
	inner [2]uint64 // salt[0:16]: hashes the variable-length fields
	outer [2]uint64 // salt[16:32]: hashes the fixed-length combination
}

func expand(salt *[SaltSize]byte) key {
	return key{
		inner: [2]uint64{binary.LittleEndian.Uint64(salt[0:8]), binary.LittleEndian.Uint64(salt[8:16])},
		outer: [2]uint64{binary.LittleEndian.Uint64(salt[16:24]), binary.LittleEndian.Uint64(salt[24:32])},
	}
}

// Sum returns the visitor id of (project, ip, ua) under salt, which must be
// SaltSize bytes (Sum panics otherwise: a short salt would be a weak key).
//
// SipHash-2-4 is a keyed pseudo-random function: without the key its output
// reveals nothing about the input, and with the key it is cheap (about a
// nanosecond per byte). The project and User-Agent, whose lengths vary, are
// each hashed first and the final hash runs over a fixed layout
// (IP | H(project) | H(User-Agent)), which keeps fields from running into
// each other ("ab"+"c" and "a"+"bc" differ) without copying the User-Agent
// into a buffer. An IPv4 address and its IPv4-mapped IPv6 form give the same
// id; an IPv6 zone is ignored. Sum does not allocate.
func Sum(salt []byte, project []byte, ip netip.Addr, ua []byte) ID {
	k := expand((*[SaltSize]byte)(salt))
	return k.sum(project, ip, ua)
}

func (k *key) sum(project []byte, ip netip.Addr, ua []byte) ID {
	var buf [48]byte
	a := ip.As16() // IPv4 becomes ::ffff:a.b.c.d, the same bytes as its mapped form
	copy(buf[0:16], a[:])
	p0, p1 := siphash.Hash128(k.inner[0], k.inner[1], project)
	binary.LittleEndian.PutUint64(buf[16:24], p0)
	binary.LittleEndian.PutUint64(buf[24:32], p1)
	u0, u1 := siphash.Hash128(k.inner[0], k.inner[1], ua)
	binary.LittleEndian.PutUint64(buf[32:40], u0)
	binary.LittleEndian.PutUint64(buf[40:48], u1)
	r0, r1 := siphash.Hash128(k.outer[0], k.outer[1], buf[:])
	var id ID
	binary.LittleEndian.PutUint64(id[0:8], r0)
	binary.LittleEndian.PutUint64(id[8:16], r1)
	return id
}
