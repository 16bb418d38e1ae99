package publish

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/segmentio/kafka-go"
)

// BenchmarkCompression compares the codecs (pkg/kafkawriter's LZ4 and
// Snappy) on partition batches of 16 and 64 raw hits, the sizes the edge
// writes at moderate and full load. The records are the load harness's
// realistic mix when PIXELSTREAM_MIX_FILE names a `psbench dumpmix` file,
// else fill's synthetic ones, which repeat one User-Agent and so favour
// LZ4. It backs the choice of the default codec: see config's
// -kafka-compression.
func BenchmarkCompression(b *testing.B) {
	values := mixValues(b)
	for _, per := range []int{16, 64} {
		var batches [][]byte
		for i := 0; i+per <= len(values); i += per {
			var raw bytes.Buffer
			for _, v := range values[i : i+per] {
				raw.Write(v)
			}
			batches = append(batches, raw.Bytes())
		}
		for _, c := range []kafka.Compression{kafka.Snappy, kafka.Lz4, kafka.Zstd} {
			codec := c.Codec()
			b.Run(fmt.Sprintf("%s/%d", codec.Name(), per), func(b *testing.B) {
				var out bytes.Buffer
				var in, compressed int
				b.ReportAllocs()
				for b.Loop() {
					for _, raw := range batches {
						out.Reset()
						w := codec.NewWriter(&out)
						if _, err := w.Write(raw); err != nil {
							b.Fatal(err)
						}
						if err := w.Close(); err != nil {
							b.Fatal(err)
						}
						in += len(raw)
						compressed += out.Len()
					}
				}
				b.ReportMetric(float64(in)/float64(compressed), "ratio")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batches)*per), "ns/hit")
			})
		}
	}
}

// mixValues returns encoded raw hits: the dumpmix file's, or 1,024 of
// fill's.
func mixValues(b *testing.B) [][]byte {
	path := os.Getenv("PIXELSTREAM_MIX_FILE")
	if path == "" {
		var values [][]byte
		for _, m := range encoded(b, 1024) {
			values = append(values, m.Value)
		}
		return values
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var values [][]byte
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return values
		}
		if err != nil {
			b.Fatal(err)
		}
		v := make([]byte, n)
		if _, err := io.ReadFull(r, v); err != nil {
			b.Fatal(err)
		}
		values = append(values, v)
	}
}
