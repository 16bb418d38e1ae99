package kafkawriter

import (
	"strings"

	"github.com/segmentio/kafka-go"
)

// CompressionNames lists the values ParseCompression accepts, for help
// texts and error messages.
const CompressionNames = "none, snappy, lz4, zstd or gzip"

// codecs maps option values to kafka-go codecs.
var codecs = map[string]kafka.Compression{
	"none":   0,
	"snappy": kafka.Snappy,
	"lz4":    kafka.Lz4,
	"zstd":   kafka.Zstd,
	"gzip":   kafka.Gzip,
}

// ParseCompression returns the codec an option value names (any case),
// and false for a name not in CompressionNames.
func ParseCompression(name string) (kafka.Compression, bool) {
	c, ok := codecs[strings.ToLower(strings.TrimSpace(name))]
	return c, ok
}
