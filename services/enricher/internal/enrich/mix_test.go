package enrich

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"os"
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/classify"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// readMix reads the raw hits `psbench dumpmix` wrote to path.
func readMix(b *testing.B, path string) []kafka.Message {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var msgs []kafka.Message
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return msgs
		}
		if err != nil {
			b.Fatal(err)
		}
		v := make([]byte, n)
		if _, err := io.ReadFull(r, v); err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Value: v})
	}
}

// BenchmarkMixChain runs the per-record steps (campaign, geo with
// GEOIP_CITY_DB, device, classification, JSON) over the realistic mix of
// the load harness, dumped by `psbench dumpmix -out FILE` and named by
// PIXELSTREAM_MIX_FILE, on one worker: ns/record is the enricher's CPU per
// event outside Kafka, sessions and dedup, without the broker and the
// other tenants of a drain moving it. Every op starts with cold
// User-Agent and geo caches (built outside the timer), so the file's
// never-seen User-Agents cost what they cost a drain.
func BenchmarkMixChain(b *testing.B) {
	path := os.Getenv("PIXELSTREAM_MIX_FILE")
	if path == "" {
		b.Skip("PIXELSTREAM_MIX_FILE not set (psbench dumpmix)")
	}
	in := readMix(b, path)
	ag, err := classify.NewAgentClassifier(classify.AgentConfig{})
	if err != nil {
		b.Fatal(err)
	}
	batch := &pipeline.Batch{}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dev, err := device.New("", 0)
		if err != nil {
			b.Fatal(err)
		}
		var r *geo.Resolver
		if p := os.Getenv("GEOIP_CITY_DB"); p != "" {
			if r, err = geo.Open(p, ""); err != nil {
				b.Fatal(err)
			}
		}
		s, _ := newStage()
		s.Workers = 1
		s.NewSteps = chainOf(dev, ag, r)
		b.StartTimer()
		for i := 0; i < len(in); i += 500 {
			batch.Reset()
			batch.In = append(batch.In, in[i:min(i+500, len(in))]...)
			if err := s.Process(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if r != nil {
			_ = r.Close()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/record")
}
