package kafkawriter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// batch is one partition chunk encoded as a Kafka v2 record batch, byte for
// byte what kafka-go's RecordSet writes for the same records (with Snappy,
// whose framing follows the writes, the same records in other frames),
// preceded by the int32 size that a produce request puts before a record
// set: a rawproduce request copies its record sets verbatim.
//
// Encoding here rather than handing kafka-go a RecordReader saves its
// reflection-driven walk of every record: an io.Copy per key and value,
// and every field through a writer that checks errors per call. Each
// record is still copied once, into a scratch buffer instead of LZ4's
// block buffer, and reaches the codec in whole blocks, which pierrec/lz4
// compresses straight from the scratch. Batches are pooled, so a busy
// writer's buffers are sized once.
type batch struct {
	// buf is the size prefix, the batch header and the records section,
	// compressed when the header's attributes say so.
	buf []byte
	// reader hands buf to the request without an allocation per send.
	reader bytes.Reader
}

var batches = sync.Pool{New: func() any { return new(batch) }}

// scratches holds the encoded records on their way to a codec: a block and
// a bit, not the whole uncompressed section, and one per request, not one
// per partition, since a request's batches are encoded one after another.
// After a collection emptied the pools (often, in the enricher), a
// request thus allocates what kafka-go's encoder did plus its compressed
// batches and one scratch, not also a copy of its uncompressed records.
var scratches = sync.Pool{New: func() any { return new([]byte) }}

func putBatches(bs []*batch) {
	for _, b := range bs {
		batches.Put(b)
	}
}

// Offsets into batch.buf: the 4-byte size prefix, then the v2 batch header
// (baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic
// int8, crc uint32, attributes int16, ...) of batchHeaderLen bytes.
const (
	batchLengthAt  = 4 + 8
	crcAt          = 4 + 17
	attributesAt   = 4 + 21 // the CRC covers attributes to the end
	batchHeaderLen = 61
)

// codecWrite is the granularity of writes to a codec: LZ4 compresses a
// write of whole blocks in place and copies anything else into its block
// buffer first.
const codecWrite = int(lz4Block)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ratios[c] is the compressed size of the last batch compressed with codec
// c, in 1/1024ths of its uncompressed size: the hint that sizes buf in one
// allocation when it comes new from the pool, instead of a series of
// appends that allocate several times the result.
var ratios [len(compress.Codecs)]atomic.Int64

// encode fills b with the records msgs[idx], compressed with comp, using
// scratch for the records on their way to the codec; now stands in for a
// zero Message.Time.
func (b *batch) encode(msgs []kafka.Message, idx []int32, comp kafka.Compression, now time.Time, scratch *[]byte) error {
	var codec compress.Codec
	if comp != 0 {
		if codec = comp.Codec(); codec == nil {
			return fmt.Errorf("kafkawriter: no codec for compression %d", comp)
		}
	}
	nowMs := millis(now)
	base := recordTime(&msgs[idx[0]], nowMs)
	// kafka-go starts the maximum at 0, not at the first timestamp, so a
	// batch of pre-1970 records says 0: kept so batches stay identical.
	maxTime := int64(0)
	for _, i := range idx {
		maxTime = max(maxTime, recordTime(&msgs[i], nowMs))
	}

	buf := b.buf[:0]
	buf = binary.BigEndian.AppendUint32(buf, 0)            // size prefix, set below
	buf = binary.BigEndian.AppendUint64(buf, 0)            // baseOffset
	buf = binary.BigEndian.AppendUint32(buf, 0)            // batchLength, set below
	buf = binary.BigEndian.AppendUint32(buf, ^uint32(0))   // partitionLeaderEpoch -1
	buf = append(buf, 2)                                   // magic
	buf = binary.BigEndian.AppendUint32(buf, 0)            // crc, set below
	buf = binary.BigEndian.AppendUint16(buf, uint16(comp)) // attributes: codec, create time
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(idx)-1))
	buf = binary.BigEndian.AppendUint64(buf, uint64(base))
	buf = binary.BigEndian.AppendUint64(buf, uint64(maxTime))
	buf = binary.BigEndian.AppendUint64(buf, ^uint64(0)) // producerId -1
	buf = binary.BigEndian.AppendUint16(buf, ^uint16(0)) // producerEpoch -1
	buf = binary.BigEndian.AppendUint32(buf, ^uint32(0)) // baseSequence -1
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(idx)))

	size := 0
	for _, i := range idx {
		size += messageSize(&msgs[i]) // a little over the encoded size
	}
	if codec == nil {
		buf = slices.Grow(buf, size)
		for i, j := range idx {
			buf = appendRecord(buf, &msgs[j], i, base, nowMs)
		}
	} else {
		ratio := &ratios[comp]
		// An eighth over the last ratio: a batch a little less
		// compressible than the last still fits.
		b.buf = slices.Grow(buf, int(int64(size)*ratio.Load()/1024*9/8))
		z := codec.NewWriter(b)
		*scratch = slices.Grow((*scratch)[:0], min(size, codecWrite+codecWrite/8))
		err := writeRecords(z, scratch, msgs, idx, base, nowMs)
		if cerr := z.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("kafkawriter: %s compression: %w", codec.Name(), err)
		}
		buf = b.buf
		ratio.Store(int64(len(buf)-4-batchHeaderLen) * 1024 / int64(size))
	}

	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[batchLengthAt:], uint32(len(buf)-batchLengthAt-4))
	binary.BigEndian.PutUint32(buf[crcAt:], crc32.Checksum(buf[attributesAt:], castagnoli))
	b.buf = buf
	b.reader.Reset(buf)
	return nil
}

// writeRecords writes the records msgs[idx] to z in writes of whole
// codecWrite blocks but the last, encoding them in scratch.
func writeRecords(z io.Writer, scratch *[]byte, msgs []kafka.Message, idx []int32, base, now int64) error {
	pending := (*scratch)[:0]
	defer func() { *scratch = pending[:0] }()
	for i, j := range idx {
		pending = appendRecord(pending, &msgs[j], i, base, now)
		if n := len(pending) / codecWrite * codecWrite; n > 0 {
			if _, err := z.Write(pending[:n]); err != nil {
				return err
			}
			// Moves less than a block, usually part of one record.
			pending = pending[:copy(pending, pending[n:])]
		}
	}
	if len(pending) == 0 {
		return nil
	}
	_, err := z.Write(pending)
	return err
}

// Write appends p to buf: the codec writes the compressed records here.
func (b *batch) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// appendRecord appends m to dst in the v2 format, as the record at
// offsetDelta of a batch whose timestamps are deltas from base.
func appendRecord(dst []byte, m *kafka.Message, offsetDelta int, base, now int64) []byte {
	delta := recordTime(m, now) - base
	n := 1 + varintLen(delta) + varintLen(int64(offsetDelta)) + bytesLen(m.Key) + bytesLen(m.Value) +
		varintLen(int64(len(m.Headers)))
	for k := range m.Headers {
		h := &m.Headers[k]
		n += varintLen(int64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, 0) // attributes, unused
	dst = binary.AppendVarint(dst, delta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, m.Key)
	dst = appendBytes(dst, m.Value)
	dst = binary.AppendVarint(dst, int64(len(m.Headers)))
	for k := range m.Headers {
		h := &m.Headers[k]
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

// appendBytes appends b as a varint length and the bytes, a nil b as
// length -1 (null), which is not the empty slice's 0: consumers tell them
// apart.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// bytesLen is the size appendBytes appends.
func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// recordTime is m's timestamp in milliseconds as kafka-go computes it
// (UnixNano / 1e6, so the same truncation and range), with now for a Time
// that comes out as 0: kafka-go takes 0 for unset, so a zero Time and the
// epoch's first millisecond both become now.
func recordTime(m *kafka.Message, now int64) int64 {
	if t := millis(m.Time); t != 0 {
		return t
	}
	return now
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano() / int64(time.Millisecond)
}
