package kafkawriter

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/pierrec/lz4/v4"
	kafkalz4 "github.com/segmentio/kafka-go/compress/lz4"

	"github.com/segmentio/kafka-go/compress"
)

// payload is a record batch's worth of JSON-like text: about 1 MiB.
func payload() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, `{"event_id":"%016x","page_url":"https://shop.example/p/%d?utm_source=news","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15","geo_city":"City %d"}`, i*7919, i%500, i%97)
	}
	return b.Bytes()
}

func compressWith(t testing.TB, c compress.Codec, src []byte) []byte {
	var out bytes.Buffer
	return compressInto(t, c, src, &out)
}

func compressInto(t testing.TB, c compress.Codec, src []byte, out *bytes.Buffer) []byte {
	out.Reset()
	w := c.NewWriter(out)
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestLZ4Codec: the installed codec is ours, writes 64 KiB-block frames that
// kafka-go's and pierrec's readers decode, and its pooled writers can be
// reused.
func TestLZ4Codec(t *testing.T) {
	c := compress.Lz4.Codec()
	if _, ok := c.(*lz4Codec); !ok {
		t.Fatalf("kafka-go's LZ4 codec is %T, want *lz4Codec", c)
	}
	src := payload()
	for round := range 3 {
		frame := compressWith(t, c, src)
		// Frame descriptor: magic(4) FLG(1) BD(1); BD bits 6-4 are the
		// block size index, 4 = 64 KiB.
		if got := frame[5] >> 4 & 7; got != 4 {
			t.Fatalf("round %d: block size index %d, want 4 (64 KiB)", round, got)
		}
		// FLG bit 2: content checksum.
		if frame[4]&0x04 != 0 {
			t.Fatalf("round %d: content checksum flag set", round)
		}
		r := c.NewReader(bytes.NewReader(frame))
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round %d: kafka-go's reader: %v, equal=%v", round, err, bytes.Equal(got, src))
		}
		got, err = io.ReadAll(lz4.NewReader(bytes.NewReader(frame)))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round %d: pierrec reader: %v", round, err)
		}
		if ratio := float64(len(frame)) / float64(len(src)); ratio > 0.5 {
			t.Fatalf("round %d: compressed to %.2f of the input", round, ratio)
		}
	}
}

// BenchmarkLZ4Compress compares kafka-go's LZ4 codec (4 MiB blocks) with
// ours on 1 MiB of JSON: time, and bytes allocated per batch (-benchmem).
// "after-gc" empties the codecs' buffer pools before every batch, as the
// collector does in a process that collects often: that is the enricher
// under its soft memory limit, where kafka-go's codec allocated a 4 MiB
// buffer for most batches.
func BenchmarkLZ4Compress(b *testing.B) {
	src := payload()
	for _, bc := range []struct {
		name  string
		codec compress.Codec
	}{
		{"kafka-go", &kafkalz4.Codec{}},
		{"64KiB-blocks", compress.Lz4.Codec()},
	} {
		for _, afterGC := range []bool{false, true} {
			name := bc.name
			if afterGC {
				name += "/after-gc"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(src)))
				b.ReportAllocs()
				var out bytes.Buffer
				var size int
				for b.Loop() {
					if afterGC {
						dropPools(b)
					}
					size = len(compressInto(b, bc.codec, src, &out))
				}
				b.ReportMetric(float64(size)/float64(len(src)), "ratio")
			})
		}
	}
}
