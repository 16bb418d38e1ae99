package consumer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go"
)

// testRecord is one record for buildBatch.
type testRecord struct {
	key, value []byte
	headers    []kafka.Header
}

// buildBatch encodes a v2 record batch as a producer would, optionally
// lz4-compressed or as a control batch.
func buildBatch(t testing.TB, base int64, recs []testRecord, compressed, control bool) []byte {
	var body []byte
	for i, r := range recs {
		var rec []byte
		rec = append(rec, 0)                        // attributes
		rec = binary.AppendVarint(rec, int64(i)*10) // timestamp delta
		rec = binary.AppendVarint(rec, int64(i))    // offset delta
		rec = appendVarBytes(rec, r.key)            //
		rec = appendVarBytes(rec, r.value)          //
		rec = binary.AppendVarint(rec, int64(len(r.headers)))
		for _, h := range r.headers {
			rec = appendVarBytes(rec, []byte(h.Key))
			rec = appendVarBytes(rec, h.Value)
		}
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	attrs := uint16(0)
	if compressed {
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
		attrs |= 3
	}
	if control {
		attrs |= 0x20
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	b = binary.BigEndian.AppendUint32(b, 0) // length, set below
	b = binary.BigEndian.AppendUint32(b, 0) // leader epoch
	b = append(b, 2)                        // magic
	b = binary.BigEndian.AppendUint32(b, 0) // crc, set below
	b = binary.BigEndian.AppendUint16(b, attrs)
	b = binary.BigEndian.AppendUint32(b, uint32(max(len(recs)-1, 0)))
	b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000) // base timestamp
	b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000+uint64(10*len(recs)))
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id
	b = binary.BigEndian.AppendUint16(b, ^uint16(0)) // producer epoch
	b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // base sequence
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func appendVarBytes(b, s []byte) []byte {
	if s == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(s))), s...)
}

func recs(prefix string, n int) []testRecord {
	out := make([]testRecord, n)
	for i := range out {
		v := []byte(prefix + string(rune('a'+i)))
		out[i] = testRecord{key: v, value: v, headers: []kafka.Header{{Key: "h", Value: v}}}
	}
	return out
}

func TestDecodeBatches(t *testing.T) {
	plain := buildBatch(t, 10, recs("p", 3), false, false) // offsets 10-12
	lz := buildBatch(t, 13, recs("z", 4), true, false)     // 13-16
	ctrl := buildBatch(t, 17, recs("c", 1), false, true)   // 17
	after := buildBatch(t, 18, recs("q", 2), false, false) // 18-19
	corrupt := bytes.Clone(plain)
	corrupt[len(corrupt)-1] ^= 1
	all := bytes.Join([][]byte{plain, lz, ctrl, after}, nil)
	tests := []struct {
		name    string
		records []byte
		from    int64
		want    []int64
		next    int64
		err     error
	}{
		{"all batches, control skipped", all, 10, []int64{10, 11, 12, 13, 14, 15, 16, 18, 19}, 20, nil},
		{"from inside a batch", all, 12, []int64{12, 13, 14, 15, 16, 18, 19}, 20, nil},
		{"from inside a compressed batch", all, 15, []int64{15, 16, 18, 19}, 20, nil},
		{"trailing batch cut at the size limit", append(bytes.Clone(plain), lz[:len(lz)-5]...), 10, []int64{10, 11, 12}, 13, nil},
		{"only a control batch advances", ctrl, 17, nil, 18, nil},
		{"empty", nil, 5, nil, 5, nil},
		{"crc mismatch", corrupt, 10, nil, 10, errBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			next, err := decodeBatches(tt.records, tt.from, "raw", 2, func(m kafka.Message) error {
				if m.Topic != "raw" || m.Partition != 2 || !bytes.Equal(m.Key, m.Value) || len(m.Headers) != 1 || !bytes.Equal(m.Headers[0].Value, m.Value) {
					t.Errorf("record %d: %+v", m.Offset, m)
				}
				got = append(got, m.Offset)
				return nil
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if tt.err == nil && (next != tt.next || !slices.Equal(got, tt.want)) {
				t.Errorf("offsets %v next %d, want %v next %d", got, next, tt.want, tt.next)
			}
		})
	}
}

// TestRecordsOutliveBuffers: a record's bytes stay intact after the
// response buffer they were decoded from is overwritten.
func TestRecordsOutliveBuffers(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		buf := buildBatch(t, 0, recs("v", 3), compressed, false)
		var got []kafka.Message
		if _, err := decodeBatches(buf, 0, "raw", 0, func(m kafka.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatal(err)
		}
		clear(buf)
		for i, m := range got {
			if want := "v" + string(rune('a'+i)); string(m.Value) != want || string(m.Key) != want {
				t.Errorf("compressed=%v: record %d is %q/%q after its buffer was reused, want %q", compressed, i, m.Key, m.Value, want)
			}
		}
	}
}

// TestBufferReuse: a batch's buffer goes back to the pool only when its
// last record is released, the records of a batch held meanwhile keep
// their bytes while later batches reuse buffers, and a second release of
// a record is refused.
func TestBufferReuse(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		decode := func(prefix string) []kafka.Message {
			var got []kafka.Message
			if _, err := decodeBatches(buildBatch(t, 0, recs(prefix, 3), compressed, false), 0, "raw", 0,
				func(m kafka.Message) error { got = append(got, m); return nil }); err != nil {
				t.Fatal(err)
			}
			return got
		}
		c := &Consumer{}
		held := decode("h")
		before := pooled.Load()
		for range 50 {
			msgs := decode("x")
			c.Release(msgs[:2])
			if pooled.Load() != before {
				t.Fatalf("compressed=%v: buffer pooled with a record still unreleased", compressed)
			}
			c.Release(msgs[2:])
			if got := pooled.Load() - before; got != 1 {
				t.Fatalf("compressed=%v: %d buffers pooled after the last release, want 1", compressed, got)
			}
			before++
		}
		for i, m := range held {
			if want := "h" + string(rune('a'+i)); string(m.Value) != want || string(m.Key) != want {
				t.Errorf("compressed=%v: held record %d is %q/%q, want %q", compressed, i, m.Key, m.Value, want)
			}
		}
		buf := held[0].WriterData.(*Buffer)
		c.Release(held)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("compressed=%v: a buffer released more often than referenced did not panic", compressed)
				}
			}()
			buf.Release()
		}()
	}
}

// fetchResponse encodes a Fetch v11 response body (after the correlation
// id) with one topic and the given partitions' records.
func fetchResponse(topic string, parts map[int32][]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0) // throttle
	b = binary.BigEndian.AppendUint16(b, 0)    // error
	b = binary.BigEndian.AppendUint32(b, 0)    // session
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(parts)))
	for p, recs := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(p))
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint64(b, 100) // high watermark
		b = binary.BigEndian.AppendUint64(b, 100)
		b = binary.BigEndian.AppendUint64(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0) // no aborted transactions
		b = binary.BigEndian.AppendUint32(b, ^uint32(0))
		b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
		b = append(b, recs...)
	}
	return b
}

func TestParseFetchResponse(t *testing.T) {
	body := fetchResponse("raw", map[int32][]byte{4: buildBatch(t, 0, recs("x", 2), true, false)})
	var n int
	code, err := parseFetchResponse(body, func(fp *fetchedPartition) error {
		if fp.topic != "raw" || fp.partition != 4 || fp.highWatermark != 100 {
			t.Errorf("partition %+v", fp)
		}
		_, err := decodeBatches(fp.records, 0, fp.topic, int(fp.partition), func(kafka.Message) error { n++; return nil })
		return err
	})
	if err != nil || code != 0 || n != 2 {
		t.Fatalf("code %d, err %v, %d records; want 0, nil, 2", code, err, n)
	}
	for cut := range len(body) {
		if _, err := parseFetchResponse(body[:cut], func(*fetchedPartition) error { return nil }); !errors.Is(err, errWire) {
			t.Fatalf("response cut at %d of %d bytes: err %v, want errWire", cut, len(body), err)
		}
	}
}

// FuzzFetchResponse: a fetch response from a broker is untrusted input; no
// input may panic, allocate beyond its size, or yield a record outside it.
func FuzzFetchResponse(f *testing.F) {
	f.Add(fetchResponse("raw", map[int32][]byte{0: buildBatch(f, 0, recs("x", 3), true, false)}))
	f.Add(fetchResponse("raw", map[int32][]byte{1: buildBatch(f, 7, recs("y", 2), false, false)}))
	f.Add(fetchResponse("raw", map[int32][]byte{2: buildBatch(f, 7, recs("c", 1), false, true)}))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseFetchResponse(body, func(fp *fetchedPartition) error {
			_, err := decodeBatches(fp.records, 0, fp.topic, int(fp.partition), func(m kafka.Message) error {
				if m.Offset < 0 {
					t.Fatalf("negative offset %d emitted", m.Offset)
				}
				return nil
			})
			return err
		})
	})
}
