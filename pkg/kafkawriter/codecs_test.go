package kafkawriter

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestParseCompression(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want kafka.Compression
		ok   bool
	}{
		{"none", 0, true},
		{"LZ4", kafka.Lz4, true},
		{" snappy ", kafka.Snappy, true},
		{"zstd", kafka.Zstd, true},
		{"gzip", kafka.Gzip, true},
		{"brotli", 0, false},
		{"", 0, false},
	} {
		if got, ok := ParseCompression(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
