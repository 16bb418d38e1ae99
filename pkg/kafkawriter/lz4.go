package kafkawriter

import (
	"io"
	"sync"

	"github.com/pierrec/lz4/v4"
	"github.com/segmentio/kafka-go/compress"
)

// Importing this package installs LZ4 with 64 KiB blocks as kafka-go's LZ4
// codec, for every producer and consumer in the process.
//
// kafka-go's own codec uses pierrec/lz4's default 4 MiB blocks: every
// compressed record batch takes a 4 MiB buffer from a sync.Pool, and the
// garbage collector empties such pools, so a process that collects often
// (the enricher, under its soft memory limit) allocated a fresh 4 MiB
// buffer for most batches: a quarter of all its allocated bytes. LZ4 only
// matches within 64 KiB anyway, so bigger blocks compress no better, and
// 64 KiB is the block size of Kafka's Java producer. Decompression is
// kafka-go's, unchanged: frames of any block size decode the same.
func init() {
	compress.Codecs[compress.Lz4] = &lz4Codec{reader: compress.Codecs[compress.Lz4]}
}

// lz4Block is the codec's block size; batch.encode writes to the codec in
// multiples of it.
const lz4Block = lz4.Block64Kb

type lz4Codec struct {
	reader compress.Codec // kafka-go's, for NewReader
	pool   sync.Pool      // *lz4.Writer configured with 64 KiB blocks
}

// Code implements compress.Codec.
func (c *lz4Codec) Code() int8 { return int8(compress.Lz4) }

// Name implements compress.Codec.
func (c *lz4Codec) Name() string { return "lz4" }

// NewReader implements compress.Codec with kafka-go's reader.
func (c *lz4Codec) NewReader(r io.Reader) io.ReadCloser { return c.reader.NewReader(r) }

// NewWriter implements compress.Codec.
func (c *lz4Codec) NewWriter(w io.Writer) io.WriteCloser {
	z, _ := c.pool.Get().(*lz4.Writer)
	if z == nil {
		z = lz4.NewWriter(w)
		// No content checksum either, like the Java producer: the record
		// batch's CRC-32C already covers the compressed bytes, and the
		// checksum pass cost 1.7 % of the enricher's CPU. Apply only fails
		// for invalid options.
		if err := z.Apply(lz4.BlockSizeOption(lz4Block), lz4.ChecksumOption(false)); err != nil {
			panic(err)
		}
	}
	z.Reset(w)
	return &lz4Writer{z: z, pool: &c.pool}
}

type lz4Writer struct {
	z    *lz4.Writer
	pool *sync.Pool
}

func (w *lz4Writer) Write(b []byte) (int, error) { return w.z.Write(b) }

// Close flushes the frame and returns the writer to the pool.
func (w *lz4Writer) Close() error {
	z := w.z
	if z == nil {
		return nil
	}
	w.z = nil
	err := z.Close()
	z.Reset(nil)
	w.pool.Put(z)
	return err
}
