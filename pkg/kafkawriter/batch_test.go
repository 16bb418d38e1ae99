package kafkawriter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

var compressions = []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd}

// batchHeader is a v2 record batch header as the test reads it, by hand:
// kafka-go's decoder skips lastOffsetDelta and maxTimestamp.
type batchHeader struct {
	baseOffset     int64
	batchLength    int32
	leaderEpoch    int32
	magic          int8
	crc            uint32
	attributes     int16
	lastDelta      int32
	baseTimestamp  int64
	maxTimestamp   int64
	producerID     int64
	producerEpoch  int16
	baseSequence   int32
	recordCount    int32
	crcComputed    uint32 // CRC-32C of attributes to the end
	sizePrefix     int32
	bytesAfterSize int
}

func readHeader(t *testing.T, buf []byte) batchHeader {
	t.Helper()
	if len(buf) < 4+61 {
		t.Fatalf("batch of %d bytes, shorter than its header", len(buf))
	}
	be := binary.BigEndian
	b := buf[4:]
	return batchHeader{
		sizePrefix:     int32(be.Uint32(buf)),
		bytesAfterSize: len(b),
		baseOffset:     int64(be.Uint64(b[0:])),
		batchLength:    int32(be.Uint32(b[8:])),
		leaderEpoch:    int32(be.Uint32(b[12:])),
		magic:          int8(b[16]),
		crc:            be.Uint32(b[17:]),
		attributes:     int16(be.Uint16(b[21:])),
		lastDelta:      int32(be.Uint32(b[23:])),
		baseTimestamp:  int64(be.Uint64(b[27:])),
		maxTimestamp:   int64(be.Uint64(b[35:])),
		producerID:     int64(be.Uint64(b[43:])),
		producerEpoch:  int16(be.Uint16(b[51:])),
		baseSequence:   int32(be.Uint32(b[53:])),
		recordCount:    int32(be.Uint32(b[57:])),
		crcComputed:    crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)),
	}
}

// wantMillis is the timestamp kafka-go gives m: UnixNano / 1e6, and now
// when that is 0 (a zero Time, or the epoch's first millisecond).
func wantMillis(m *kafka.Message, now time.Time) int64 {
	if !m.Time.IsZero() {
		if ms := m.Time.UnixNano() / 1e6; ms != 0 {
			return ms
		}
	}
	return now.UnixNano() / 1e6
}

// checkBatch decodes buf, as encode wrote msgs with comp at now, with
// kafka-go's own reader and reads its header by hand, and fails t on any
// difference from msgs.
func checkBatch(t *testing.T, buf []byte, msgs []kafka.Message, comp kafka.Compression, now time.Time) {
	t.Helper()
	h := readHeader(t, buf)
	n := int32(len(msgs))
	base := wantMillis(&msgs[0], now)
	maxTime := int64(0)
	for i := range msgs {
		maxTime = max(maxTime, wantMillis(&msgs[i], now))
	}
	want := batchHeader{
		sizePrefix: int32(h.bytesAfterSize), bytesAfterSize: h.bytesAfterSize,
		baseOffset: 0, batchLength: int32(h.bytesAfterSize - 12), leaderEpoch: -1, magic: 2,
		crc: h.crcComputed, attributes: int16(comp), lastDelta: n - 1,
		baseTimestamp: base, maxTimestamp: maxTime,
		producerID: -1, producerEpoch: -1, baseSequence: -1, recordCount: n, crcComputed: h.crcComputed,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}

	var rs protocol.RecordSet
	read, err := rs.ReadFrom(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("kafka-go's decoder: %v", err)
	}
	if read != int64(len(buf)) || rs.Version != 2 || rs.Attributes.Compression() != comp {
		t.Fatalf("kafka-go read %d of %d bytes, version %d, compression %v; want all, 2, %v",
			read, len(buf), rs.Version, rs.Attributes.Compression(), comp)
	}
	for i := range msgs {
		r, err := rs.Records.ReadRecord()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		m := &msgs[i]
		if r.Offset != int64(i) {
			t.Fatalf("record %d: offset %d (base 0 + offsetDelta)", i, r.Offset)
		}
		if got, want := r.Time.UnixMilli(), wantMillis(m, now); got != want {
			t.Fatalf("record %d: timestamp %d, want %d", i, got, want)
		}
		key, err := protocol.ReadAll(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		value, err := protocol.ReadAll(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBytes(key, m.Key) || !sameBytes(value, m.Value) {
			t.Fatalf("record %d: key %q (nil %v) value %.40q (nil %v); want %q (nil %v), %.40q (nil %v)", i,
				key, key == nil, value, value == nil, m.Key, m.Key == nil, m.Value, m.Value == nil)
		}
		if len(r.Headers) != len(m.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(r.Headers), len(m.Headers))
		}
		for k, hd := range r.Headers {
			if w := m.Headers[k]; hd.Key != w.Key || !sameBytes(hd.Value, w.Value) {
				t.Fatalf("record %d header %d: %q=%q (nil %v), want %q=%q (nil %v)", i, k,
					hd.Key, hd.Value, hd.Value == nil, w.Key, w.Value, w.Value == nil)
			}
		}
	}
	if r, err := rs.Records.ReadRecord(); !errors.Is(err, io.EOF) {
		t.Fatalf("after %d records: %v, %v; want io.EOF", n, r, err)
	}
}

// sameBytes is bytes.Equal that also tells nil (null) from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// kafkaGoBatch is what kafka-go's own encoder writes for msgs: the record
// set of the request it built from our records type before.
func kafkaGoBatch(t *testing.T, msgs []kafka.Message, comp kafka.Compression, now time.Time) []byte {
	t.Helper()
	recs := make([]protocol.Record, len(msgs))
	for i, m := range msgs {
		// kafka-go reads its own clock for unset times: give it ours.
		tm := m.Time
		if wantMillis(&m, now) == now.UnixNano()/1e6 {
			tm = now
		}
		recs[i] = protocol.Record{Time: tm, Key: protocol.NewBytes(m.Key), Value: protocol.NewBytes(m.Value), Headers: m.Headers}
	}
	rs := protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(comp), Records: protocol.NewRecordReader(recs...)}
	var out bytes.Buffer
	if _, err := rs.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// encodeAll encodes msgs as one chunk into b, with scratch.
func encodeAll(t *testing.T, b *batch, scratch *[]byte, msgs []kafka.Message, comp kafka.Compression, now time.Time) []byte {
	t.Helper()
	idx := make([]int32, len(msgs))
	for i := range idx {
		idx[i] = int32(i)
	}
	if err := b.encode(msgs, idx, comp, now, scratch); err != nil {
		t.Fatal(err)
	}
	// The request reads the batch through b.reader: it must hold buf.
	sent, err := io.ReadAll(&b.reader)
	if err != nil || !bytes.Equal(sent, b.buf) {
		t.Fatalf("reader gives %d bytes (%v), buf has %d", len(sent), err, len(b.buf))
	}
	return b.buf
}

// TestEncodeBatch encodes batches of every shape with every codec, decodes
// them with kafka-go's reader (which checks the CRC-32C) and reads the
// header by hand, and compares the whole batch with kafka-go's own
// encoding of the same records byte for byte; with Snappy, whose xerial
// framing depends on how the input was split into writes, the header and
// the decompressed records section.
func TestEncodeBatch(t *testing.T) {
	now := time.UnixMilli(1_741_939_200_123)
	t0 := time.Date(2025, 3, 14, 9, 0, 0, 456_789_000, time.UTC)
	big := bytes.Repeat([]byte(`{"page_url":"https://shop.example/p/1","geo":"Berlin"},`), 3000) // 165 KB: three LZ4 blocks
	cases := []struct {
		name string
		msgs []kafka.Message
	}{
		{"one record", []kafka.Message{{Key: []byte("k"), Value: []byte("v"), Time: t0}}},
		{"nil key, empty value, headers", []kafka.Message{
			{Value: []byte(`{"a":1}`), Time: t0},
			{Key: []byte("visitor-1"), Value: []byte{}, Time: t0.Add(time.Millisecond)},
			{Key: []byte{}, Value: nil, Time: t0.Add(2 * time.Millisecond)},
			{Key: []byte("k"), Value: []byte("v"), Time: t0, Headers: []kafka.Header{
				{Key: "trace", Value: []byte("abc")}, {Key: "nil", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "", Value: []byte("x")},
			}},
		}},
		{"unset times take now", []kafka.Message{
			{Value: []byte("a")},
			{Value: []byte("b"), Time: t0},
			{Value: []byte("c"), Time: time.Unix(0, 0)},
			{Value: []byte("d")},
		}},
		{"times out of order and before the epoch", []kafka.Message{
			{Value: []byte("a"), Time: t0},
			{Value: []byte("b"), Time: t0.Add(-time.Hour)},
			{Value: []byte("c"), Time: time.Date(1969, 7, 20, 20, 17, 40, 999_999, time.UTC)},
			{Value: []byte("d"), Time: t0.Add(time.Hour)},
		}},
		{"all before the epoch", []kafka.Message{
			{Value: []byte("a"), Time: time.UnixMilli(-5000)},
			{Value: []byte("b"), Time: time.UnixMilli(-1500).Add(-300 * time.Microsecond)},
		}},
		{"records over several LZ4 blocks", []kafka.Message{
			{Key: []byte("a"), Value: big, Time: t0},
			{Key: []byte("b"), Value: big[:70_000], Time: t0},
			{Key: []byte("c"), Value: []byte("small"), Time: t0},
		}},
		{"many records", enricherBatch(300)},
	}
	b, scratch := new(batch), new([]byte) // one for all: what the pools do
	for _, tc := range cases {
		for _, comp := range compressions {
			t.Run(tc.name+"/"+comp.String(), func(t *testing.T) {
				buf := encodeAll(t, b, scratch, tc.msgs, comp, now)
				checkBatch(t, buf, tc.msgs, comp, now)
				theirs := kafkaGoBatch(t, tc.msgs, comp, now)
				if comp != kafka.Snappy {
					if !bytes.Equal(buf, theirs) {
						t.Fatalf("batch differs from kafka-go's (%d bytes, kafka-go %d)", len(buf), len(theirs))
					}
					return
				}
				mine, ours := readHeader(t, buf), readHeader(t, theirs)
				mine.sizePrefix, mine.bytesAfterSize, mine.batchLength, mine.crc, mine.crcComputed = 0, 0, 0, 0, 0
				ours.sizePrefix, ours.bytesAfterSize, ours.batchLength, ours.crc, ours.crcComputed = 0, 0, 0, 0, 0
				if mine != ours {
					t.Fatalf("header differs from kafka-go's:\n got %+v\nwant %+v", mine, ours)
				}
				if got, want := recordsSection(t, buf, comp), recordsSection(t, theirs, comp); !bytes.Equal(got, want) {
					t.Fatalf("records section differs from kafka-go's (%d bytes, kafka-go %d)", len(got), len(want))
				}
			})
		}
	}
}

// recordsSection is buf's records section, decompressed with kafka-go's
// codec reader.
func recordsSection(t *testing.T, buf []byte, comp kafka.Compression) []byte {
	t.Helper()
	section := buf[4+61:]
	if comp == 0 {
		return section
	}
	r := comp.Codec().NewReader(bytes.NewReader(section))
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%v: %v", comp, err)
	}
	return out
}

// TestEncodeBatchCRC: the CRC-32C covers the header from the attributes on
// and the records, and kafka-go's decoder (used as the oracle above)
// refuses a batch whose CRC does not match, so its passing proves ours
// right.
func TestEncodeBatchCRC(t *testing.T) {
	msgs := messages(20)
	for _, comp := range compressions {
		buf := encodeAll(t, new(batch), new([]byte), msgs, comp, time.Now())
		for _, at := range []int{4 + 21, 4 + 30, 4 + 60, len(buf) - 1} {
			bad := bytes.Clone(buf)
			bad[at] ^= 0x40
			var rs protocol.RecordSet
			_, err := rs.ReadFrom(bytes.NewReader(bad))
			if err == nil {
				t.Fatalf("%v: byte %d flipped, kafka-go decoded the batch anyway", comp, at)
			}
			// Past the header a flip may break decompression before the
			// CRC is compared; in the header only the CRC can notice.
			if at < 4+61 && !strings.Contains(err.Error(), "crc32 checksum mismatch") {
				t.Fatalf("%v: byte %d flipped: %v, want a CRC mismatch", comp, at, err)
			}
		}
	}
}

// TestEncodeBatchChunk encodes a chunk of a call's messages (every third,
// as a slot's indexes are): offsets and timestamps are the chunk's, not
// the call's.
func TestEncodeBatchChunk(t *testing.T) {
	msgs := messages(30)
	for i := range msgs {
		msgs[i].Time = time.UnixMilli(1_700_000_000_000 + int64(i)*10)
	}
	var idx []int32
	var chunk []kafka.Message
	for i := 1; i < len(msgs); i += 3 {
		idx = append(idx, int32(i))
		chunk = append(chunk, msgs[i])
	}
	b := new(batch)
	now := time.Now()
	if err := b.encode(msgs, idx, kafka.Lz4, now, new([]byte)); err != nil {
		t.Fatal(err)
	}
	checkBatch(t, b.buf, chunk, kafka.Lz4, now)
}

// TestEncodeBatchRandom round-trips random records (random nil-ness, sizes
// from empty to several LZ4 blocks, headers, times zero, sub-millisecond,
// before the epoch) through encode and kafka-go's decoder, and compares
// each uncompressed batch with kafka-go's encoding byte for byte. The
// batch is reused throughout, as the pool reuses it.
func TestEncodeBatchRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	bytesOf := func(maxLen int) []byte {
		switch rng.IntN(8) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, rng.IntN(maxLen+1))
		for i := range b {
			b[i] = "abcdefgh{}:,\"0123456789"[rng.IntN(23)] // compressible, as JSON is
		}
		return b
	}
	b, scratch := new(batch), new([]byte)
	iterations := 150
	if testing.Short() {
		iterations = 50
	}
	for it := range iterations {
		msgs := make([]kafka.Message, 1+rng.IntN(40))
		for i := range msgs {
			m := &msgs[i]
			m.Key = bytesOf(40)
			maxValue := 2000
			if rng.IntN(30) == 0 {
				maxValue = 200_000
			}
			m.Value = bytesOf(maxValue)
			switch rng.IntN(4) {
			case 0: // unset
			case 1:
				m.Time = time.Unix(0, rng.Int64N(4e18)-1e18)
			default:
				m.Time = time.UnixMilli(1_700_000_000_000 + rng.Int64N(1e9))
			}
			for range rng.IntN(4) {
				m.Headers = append(m.Headers, kafka.Header{Key: string(bytesOf(10)), Value: bytesOf(30)})
			}
		}
		comp := compressions[rng.IntN(len(compressions))]
		now := time.Now()
		buf := encodeAll(t, b, scratch, msgs, comp, now)
		checkBatch(t, buf, msgs, comp, now)
		if comp == 0 {
			if theirs := kafkaGoBatch(t, msgs, comp, now); !bytes.Equal(buf, theirs) {
				t.Fatalf("iteration %d: batch differs from kafka-go's", it)
			}
		}
		if t.Failed() {
			t.Fatalf("iteration %d failed", it)
		}
	}
}

// TestUnknownCompression: New refuses a codec kafka-go does not have,
// which encode also refuses rather than sending records the broker cannot
// read.
func TestUnknownCompression(t *testing.T) {
	if _, err := New(Config{Brokers: []string{"127.0.0.1:1"}, Compression: 7}); err == nil {
		t.Fatal("New accepted compression 7")
	}
	if err := new(batch).encode(messages(1), []int32{0}, 7, time.Now(), new([]byte)); err == nil {
		t.Fatal("encode accepted compression 7")
	}
}

// BenchmarkEncodeBatch is the encoder alone on one partition's share of an
// enricher batch (250 records of ~1.4 KB JSON), with a pooled batch.
func BenchmarkEncodeBatch(b *testing.B) {
	msgs := enricherBatch(250)
	idx := make([]int32, len(msgs))
	var size int64
	for i := range idx {
		idx[i] = int32(i)
		size += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
	for _, comp := range compressions {
		b.Run(comp.String(), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			bt, scratch := new(batch), new([]byte)
			for b.Loop() {
				if err := bt.encode(msgs, idx, comp, time.Now(), scratch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bt.buf))/float64(size), "ratio")
		})
	}
}
