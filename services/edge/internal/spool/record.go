package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/segmentio/kafka-go"
)

// A spooled record is one Kafka message:
//
//	version   1 byte (1)
//	crc32c    4 bytes, big endian, of everything after it
//	time      8 bytes, big endian, Unix nanoseconds (the receive time)
//	key len   uvarint
//	key       key len bytes
//	value     the rest
//
// The checksum catches what go-diskqueue cannot: it frames messages with a
// length but has no checksum, and a power loss can leave zeros or stale
// bytes at a file's tail.
const (
	recordVersion = 1
	recordHeader  = 1 + 4 + 8
	// minRecord is a record with an empty key and value.
	minRecord = recordHeader + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors from decodeRecord.
var (
	errShortRecord = errors.New("spool: record too short")
	errVersion     = errors.New("spool: unknown record version")
	errChecksum    = errors.New("spool: record checksum mismatch")
	errKeyLength   = errors.New("spool: record key length out of range")
)

// appendRecord appends m's encoding to b.
func appendRecord(b []byte, m kafka.Message) []byte {
	start := len(b)
	b = append(b, recordVersion, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(m.Key)))
	b = append(b, m.Key...)
	b = append(b, m.Value...)
	binary.BigEndian.PutUint32(b[start+1:], crc32.Checksum(b[start+5:], castagnoli))
	return b
}

// recordSize is len(appendRecord(nil, m)).
func recordSize(m kafka.Message) int {
	n := recordHeader + len(m.Key) + len(m.Value) + 1
	for v := uint64(len(m.Key)); v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// decodeRecord decodes b. The message's Key and Value alias b.
func decodeRecord(b []byte) (kafka.Message, error) {
	if len(b) < minRecord {
		return kafka.Message{}, errShortRecord
	}
	if b[0] != recordVersion {
		return kafka.Message{}, errVersion
	}
	if crc32.Checksum(b[5:], castagnoli) != binary.BigEndian.Uint32(b[1:]) {
		return kafka.Message{}, errChecksum
	}
	ts := int64(binary.BigEndian.Uint64(b[5:]))
	rest := b[recordHeader:]
	klen, n := binary.Uvarint(rest)
	if n <= 0 || klen > uint64(len(rest)-n) {
		return kafka.Message{}, errKeyLength
	}
	rest = rest[n:]
	m := kafka.Message{Time: time.Unix(0, ts)}
	if klen > 0 {
		m.Key = rest[:klen:klen]
	}
	if v := rest[klen:]; len(v) > 0 {
		m.Value = v
	}
	return m, nil
}
