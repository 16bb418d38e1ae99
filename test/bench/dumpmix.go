package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
)

// cmdDumpMix writes n raw hits of the realistic mix (the records prefill
// sends to Kafka) to a file, each preceded by its length as a uvarint, so
// that Go benchmarks can run the enricher's steps over the same traffic
// without a broker (the enrich package's BenchmarkMixChain).
func cmdDumpMix(args []string) error {
	fs := flag.NewFlagSet("dumpmix", flag.ExitOnError)
	n := fs.Int("n", 200_000, "hits to write")
	seed := fs.Uint64("seed", 2, "random seed")
	out := fs.String("out", "mix.bin", "output file")
	_ = fs.Parse(args)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	m := NewMix(DefaultMix(*seed))
	var h Hit
	var r hit.Raw
	base := time.Now().Add(-15 * time.Minute).UnixNano()
	step := (15 * time.Minute).Nanoseconds() / int64(*n)
	var val []byte
	var size [binary.MaxVarintLen64]byte
	for i := range *n {
		m.Next(&h)
		rawOf(&h, base+int64(i)*step, &r)
		val = r.AppendProto(val[:0])
		_, _ = w.Write(size[:binary.PutUvarint(size[:], uint64(len(val)))])
		_, _ = w.Write(val)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("dumped=%d file=%s\n", *n, *out)
	return nil
}
