package consumer

import (
	"bytes"
	"encoding/binary"
	"errors"
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

// Record batches (Kafka's message format v2) are decoded here rather than
// by kafka-go's protocol package: that package decompresses into pooled
// pages and hands out records as page references, which a kafka.Message
// must then copy. Its pages, references and copies were over half of the
// enricher's allocated bytes and raised the GC to a fifth of its CPU
// (drain profile). Here a batch is decompressed into one buffer and the
// records' keys and values are slices of it. The buffers are pooled: they
// were still half of the enricher's allocated bytes, and each 15 MB
// allocated meant a GC cycle marking its ~160 MB of live state (the heap
// sits near its soft limit).

// batchHeaderLen is the size of a v2 record batch header up to and
// including the record count.
const batchHeaderLen = 61

// maxBatchBytes bounds a decompressed batch: far above any batch a broker
// accepts (message.max.bytes, 1 MiB by default, bounds it compressed), it
// stops a corrupt or hostile frame from inflating without end.
const maxBatchBytes = 256 << 20

// errBatchTooLarge refuses a batch body that would decompress past
// maxBatchBytes, whichever codec compressed it.
var errBatchTooLarge = fmt.Errorf("decompresses to more than %d bytes", maxBatchBytes)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBatch reports a malformed record batch.
var errBatch = errors.New("consumer: malformed record batch")

// decodeBatches decodes the record batches of one partition's fetched
// records and calls emit for each record at or after from, in offset
// order. It returns the offset to fetch next: after the last complete
// batch, or from if there was none (a trailing batch the broker cut at the
// size limit is left for the next fetch). Control batches (transaction
// markers) are skipped but advance the offset.
func decodeBatches(records []byte, from int64, topic string, partition int, emit func(kafka.Message) error) (int64, error) {
	next := from
	for len(records) >= 12 {
		baseOffset := int64(binary.BigEndian.Uint64(records))
		size := int(int32(binary.BigEndian.Uint32(records[8:])))
		if size < batchHeaderLen-12 {
			return next, fmt.Errorf("%w: batch at offset %d of %d bytes", errBatch, baseOffset, size)
		}
		if len(records) < 12+size {
			break // cut at the size limit
		}
		batch := records[:12+size]
		records = records[12+size:]
		if magic := batch[16]; magic != 2 {
			return next, fmt.Errorf("%w: message format v%d at offset %d (only v2 is read)", errBatch, magic, baseOffset)
		}
		if crc := binary.BigEndian.Uint32(batch[17:]); crc != crc32.Checksum(batch[21:], castagnoli) {
			return next, fmt.Errorf("%w: CRC mismatch in the batch at offset %d", errBatch, baseOffset)
		}
		attrs := int16(binary.BigEndian.Uint16(batch[21:]))
		lastDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		end := baseOffset + lastDelta + 1
		if end <= next {
			continue // wholly before the offset asked for
		}
		if attrs&0x20 != 0 { // control batch
			next = end
			continue
		}
		baseTime := int64(binary.BigEndian.Uint64(batch[27:]))
		maxTime := int64(binary.BigEndian.Uint64(batch[35:]))
		count := int(int32(binary.BigEndian.Uint32(batch[57:])))
		body := batch[batchHeaderLen:]
		buf := getBuffer()
		if codec := attrs & 7; codec != 0 {
			var err error
			if buf.b, err = decompress(compress.Compression(codec), body, buf.b[:0]); err != nil {
				buf.Release()
				return next, fmt.Errorf("%w: batch at offset %d: %w", errBatch, baseOffset, err)
			}
		} else {
			// The response buffer is reused for the next fetch, and the
			// records outlive it.
			buf.b = append(buf.b[:0], body...)
		}
		logAppendTime := attrs&0x08 != 0
		err := decodeRecords(buf, count, baseOffset, baseTime, maxTime, logAppendTime, next, topic, partition, emit)
		buf.Release() // the decoder's own reference: the records hold theirs
		if err != nil {
			return next, fmt.Errorf("batch at offset %d: %w", baseOffset, err)
		}
		next = end
	}
	return next, nil
}

// decodeRecords decodes count records of a batch body (buf), emitting those
// at or after from. Keys, values and header values are slices of buf, and
// each emitted record holds a reference to it (Message.WriterData) until
// it is released.
func decodeRecords(buf *Buffer, count int, baseOffset, baseTime, maxTime int64, logAppendTime bool,
	from int64, topic string, partition int, emit func(kafka.Message) error) error {
	body := buf.b
	if count < 0 || count > len(body) {
		return fmt.Errorf("%w: %d records in %d bytes", errBatch, count, len(body))
	}
	d := decoder{b: body}
	for range count {
		length := d.varint()
		start := d.off
		_ = d.byte() // record attributes: unused
		timeDelta := d.varint()
		offset := baseOffset + d.varint()
		key := d.bytes()
		value := d.bytes()
		var headers []kafka.Header
		if n := d.varint(); n > 0 {
			if n > int64(len(body)) {
				return fmt.Errorf("%w: %d headers", errBatch, n)
			}
			headers = make([]kafka.Header, n)
			for i := range headers {
				k := d.bytes()
				headers[i] = kafka.Header{Key: string(k), Value: d.bytes()}
			}
		}
		if d.err != nil {
			return d.err
		}
		if int64(d.off-start) != length {
			return fmt.Errorf("%w: record at offset %d is %d bytes, says %d", errBatch, offset, d.off-start, length)
		}
		if offset < from {
			continue
		}
		ts := baseTime + timeDelta
		if logAppendTime {
			ts = maxTime
		}
		msg := kafka.Message{Topic: topic, Partition: partition, Offset: offset, Key: key, Value: value, Headers: headers,
			Time: time.UnixMilli(ts), WriterData: buf}
		buf.refs.Add(1) // before emit: the record may be released as soon as it is queued
		if err := emit(msg); err != nil {
			buf.Release()
			return err
		}
	}
	return nil
}

// decompress inflates a batch body, appending to out.
func decompress(codec compress.Compression, body, out []byte) ([]byte, error) {
	if codec == compress.Snappy {
		return decodeSnappy(body, out)
	}
	c := codec.Codec()
	if c == nil {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	r := c.NewReader(bytes.NewReader(body))
	defer r.Close()
	// JSON-like records compress 3-5×: no growth in the usual case.
	out = slices.Grow(out, 4*len(body)+512)
	for {
		if len(out) == cap(out) {
			if len(out) >= maxBatchBytes {
				return nil, errBatchTooLarge
			}
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Buffer holds one decoded record batch, shared by its records: each
// record's Message.WriterData is the *Buffer its key and value are slices
// of. Once every record has been released (Consumer.Release), the buffer
// is reused for a later batch, so a record's bytes must not be used, or
// retained, after it is released.
type Buffer struct {
	b    []byte
	refs atomic.Int32
}

// maxPooledBytes keeps an unusually large batch's buffer out of the pool,
// so one such batch does not pin its size for every later one.
const maxPooledBytes = 4 << 20

var buffers = sync.Pool{New: func() any { return new(Buffer) }}

// pooled counts buffers returned to the pool, for tests.
var pooled atomic.Int64

// getBuffer returns a buffer holding one reference, the caller's.
func getBuffer() *Buffer {
	b := buffers.Get().(*Buffer)
	b.refs.Store(1)
	return b
}

// Release drops one reference to the buffer; the last returns it to the
// pool.
func (b *Buffer) Release() {
	switch n := b.refs.Add(-1); {
	case n > 0:
	case n < 0:
		panic("consumer: record buffer released more often than referenced")
	case cap(b.b) <= maxPooledBytes:
		b.b = b.b[:0]
		pooled.Add(1)
		buffers.Put(b)
	}
}

// decoder reads Kafka's zig-zag varints and varint-length byte strings; the
// first error sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: record truncated at byte %d", errBatch, d.off)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.b) {
		d.fail()
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

// bytes returns a varint-length byte string; nil for length -1.
func (d *decoder) bytes() []byte {
	n := d.varint()
	if d.err != nil || n < 0 {
		if n < -1 {
			d.fail()
		}
		return nil
	}
	if n > int64(len(d.b)-d.off) {
		d.fail()
		return nil
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}
