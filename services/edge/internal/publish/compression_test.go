package publish

import (
	"bytes"
	"testing"

	"github.com/segmentio/kafka-go"
)

// BenchmarkCompression compares kafka-go's codecs on a batch of 256
// realistic raw hits (the shape of one partition batch). It backs the
// choice of the default codec: see config's -kafka-compression.
func BenchmarkCompression(b *testing.B) {
	msgs := encoded(b, 256)
	var raw bytes.Buffer
	for _, m := range msgs {
		raw.Write(m.Key)
		raw.Write(m.Value)
	}
	for _, c := range []kafka.Compression{kafka.Snappy, kafka.Lz4, kafka.Zstd, kafka.Gzip} {
		codec := c.Codec()
		b.Run(codec.Name(), func(b *testing.B) {
			var out bytes.Buffer
			b.ReportAllocs()
			b.SetBytes(int64(raw.Len()))
			for b.Loop() {
				out.Reset()
				w := codec.NewWriter(&out)
				if _, err := w.Write(raw.Bytes()); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(raw.Len())/float64(out.Len()), "ratio")
		})
	}
}
