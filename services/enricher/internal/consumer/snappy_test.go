package consumer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/segmentio/kafka-go/compress"
)

// snappyBody compresses data as a producer's batch body: xerial-framed by
// kafka-go's codec (pkg/kafkawriter's fast encoder) or one bare block.
func snappyBody(t testing.TB, data []byte, framed bool) []byte {
	t.Helper()
	if !framed {
		return snappy.Encode(nil, data)
	}
	var b bytes.Buffer
	w := compress.Snappy.Codec().NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeSnappy(t *testing.T) {
	var data []byte
	for i := range 6000 { // ~200 KB: several xerial chunks
		data = fmt.Appendf(data, `{"n":%d,"ua":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_%d like Mac OS X)"}`, i, i%7)
	}
	framed := snappyBody(t, data, true)
	if !bytes.HasPrefix(framed, xerialMagic) {
		t.Fatalf("the codec wrote no xerial header: % x", framed[:16])
	}
	cut := bytes.Clone(framed[:len(framed)-3])
	badLen := bytes.Clone(framed)
	binary.BigEndian.PutUint32(badLen[xerialHeaderLen:], uint32(len(framed)))
	badBlock := bytes.Clone(framed)
	badBlock[xerialHeaderLen+4] = 0xff // the first block's length varint, unterminated
	// A block claiming more than maxBatchBytes, refused before allocating.
	bomb := binary.AppendUvarint(nil, maxBatchBytes+1)
	for _, tt := range []struct {
		name string
		body []byte
		want []byte
	}{
		{"xerial-framed, several chunks", framed, data},
		{"one bare block", snappyBody(t, data, false), data},
		{"empty input", snappyBody(t, nil, true), nil},
		{"truncated chunk", cut, nil},
		{"chunk longer than the body", badLen, nil},
		{"corrupt block", badBlock, nil},
		{"decompression bomb", bomb, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("kept")
			got, err := decompress(compress.Snappy, tt.body, bytes.Clone(prefix))
			if tt.want == nil && tt.name != "empty input" {
				if err == nil {
					t.Fatalf("decoded %d bytes, want an error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append(prefix, tt.want...)) {
				t.Fatalf("decoded %d bytes, want %d after the prefix", len(got), len(tt.want))
			}
			// kafka-go's reader agrees.
			r := compress.Snappy.Codec().NewReader(bytes.NewReader(tt.body))
			ref, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(ref, tt.want) {
				t.Fatalf("kafka-go's reader: %d bytes, %v", len(ref), err)
			}
		})
	}
}

func BenchmarkDecodeSnappy(b *testing.B) {
	var data []byte
	for i := range 1500 {
		data = fmt.Appendf(data, `{"n":%d,"ua":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_%d like Mac OS X)","url":"https://shop.example/p/%d"}`, i, i%7, i*31)
	}
	body := snappyBody(b, data, true)
	out := make([]byte, 0, 4*len(body))
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var err error
			if out, err = decodeSnappy(body, out[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kafka-go-reader", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		c := compress.Snappy.Codec()
		for b.Loop() {
			r := c.NewReader(bytes.NewReader(body))
			out = out[:0]
			for {
				if len(out) == cap(out) {
					out = append(out, 0)[:len(out)]
				}
				n, err := r.Read(out[len(out):cap(out)])
				out = out[:len(out)+n]
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			r.Close()
		}
	})
}

// FuzzDecodeSnappy: any body decodes or fails without panicking, and what
// decodes matches kafka-go's reader.
func FuzzDecodeSnappy(f *testing.F) {
	f.Add(snappyBody(f, []byte(`{"n":1,"ua":"Mozilla/5.0"}`), true))
	f.Add(snappyBody(f, bytes.Repeat([]byte("pixelstream "), 5000), true))
	f.Add(snappyBody(f, []byte("bare block"), false))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeSnappy(body, nil)
		if err != nil {
			return
		}
		ref, refErr := io.ReadAll(compress.Snappy.Codec().NewReader(bytes.NewReader(body)))
		if refErr == nil && !bytes.Equal(got, ref) {
			t.Fatalf("decoded %d bytes, kafka-go's reader %d", len(got), len(ref))
		}
	})
}
