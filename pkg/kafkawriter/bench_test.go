package kafkawriter

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkWriteMessages writes 1,024 edge-sized records per call over 6
// partitions of an in-process kfake broker, through this Writer and through
// kafka-go's Writer configured as the edge had it (5 ms batch timeout,
// BatchSize = the call's size). The broker's own work is in both; compare
// B/op and allocs/op, and time in the same run.
func BenchmarkWriteMessages(b *testing.B) {
	const topic = "bench"
	c := benchCluster(b, topic)
	brokers := c.ListenAddrs()
	msgs := make([]kafka.Message, 1024)
	for i, m := range messages(len(msgs)) {
		msgs[i] = kafka.Message{Key: m.Key, Value: make([]byte, 466), Time: time.Now()}
		copy(msgs[i].Value, m.Value)
	}
	for _, bc := range []struct {
		name  string
		write func(context.Context, ...kafka.Message) error
		close func() error
	}{
		{"kafkawriter", nil, nil},
		{"kafka-go", nil, nil},
	} {
		transport := &kafka.Transport{}
		switch bc.name {
		case "kafkawriter":
			w, err := New(Config{Brokers: brokers, Topic: topic, Compression: kafka.Lz4, Transport: transport})
			if err != nil {
				b.Fatal(err)
			}
			bc.write, bc.close = w.WriteMessages, w.Close
		default:
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
				RequiredAcks: kafka.RequireAll, Compression: kafka.Lz4, BatchSize: len(msgs),
				BatchTimeout: 5 * time.Millisecond, Transport: transport}
			bc.write, bc.close = w.WriteMessages, w.Close
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.write(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/record")
		})
		if err := bc.close(); err != nil {
			b.Fatal(err)
		}
		transport.CloseIdleConnections()
	}
}

// enricherBatch returns n records shaped like the enricher's output: a
// visitor key, ~1.4 KB of pageview JSON with varying fields (so LZ4 has a
// realistic ratio, not a trivial one), no headers and no Time, as enrich
// builds them.
func enricherBatch(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := fmt.Appendf(nil, `{"event_id":"%016x","received_at":"2025-03-14T09:%02d:%02d.%03dZ","visitor_id":"v-%08x","session_id":"s-%08x",`+
			`"page_url":"https://shop.example/products/%d?utm_source=newsletter&utm_medium=email&utm_campaign=spring-%d","referrer":"https://www.search.example/q?query=item+%d",`+
			`"user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Mobile/15E148 Safari/604.1",`+
			`"device":{"type":"mobile","os":"iOS","os_version":"17.%d","browser":"Safari","browser_version":"17.%d"},`+
			`"geo":{"country":"DE","region":"BE","city":"City %d","postal":"1%04d","lat":52.%04d,"lon":13.%04d,"tz":"Europe/Berlin"},`+
			`"campaign":{"source":"newsletter","medium":"email","name":"spring-%d","content":"hero-%d","term":""},`+
			`"click_ids":[{"key":"gclid","value":"%x"}],"screen":{"w":%d,"h":%d,"dpr":3},"lang":"de-DE","title":"Product %d - Spring Collection - Free Shipping on Orders over 50 EUR - Example Shop",`+
			`"page":{"host":"shop.example","path":"/products/%d","category":"shoes/running/%d"},"cart":{"items":%d,"value":%d.%02d,"currency":"EUR"},`+
			`"network":{"asn":%d,"org":"Example Telecom Network %d GmbH","connection":"cellular","ip_hash":"%016x%016x"},`+
			`"timing":{"dns_ms":%d,"connect_ms":%d,"ttfb_ms":%d,"dom_ms":%d,"load_ms":%d},"viewport":{"w":%d,"h":%d},`+
			`"consent":{"analytics":true,"marketing":%t},"bot":false,"visitor_new":%t,"page_seq":%d,"sdk":"pixel.js/3.%d.%d"}`,
			uint64(i)*0x9e3779b97f4a7c15, i%60, (i*7)%60, (i*13)%1000, i*7919%100000, i*104729%100000,
			i%5000, i%12, i%700, i%5, i%4, i%5, i%4, i%97, i%10000, i*31%10000, i*17%10000, i%12, i%9,
			uint64(i)*0x2545f4914f6cdd1d, 390+i%40, 844+i%60, i%5000, i%5000, i%30, i%6, i*37%300, i%100,
			3320+i%50, i%50, uint64(i)*0xbf58476d1ce4e5b9, uint64(i)*0x94d049bb133111eb,
			i%40, i%60, 80+i%300, 400+i%900, 900+i%2000, 390+i%40, 700+i%100,
			i%3 == 0, i%7 == 0, i%40, i%10, i%100)
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "v-%08x", i*7919%100000), Value: v}
	}
	return msgs
}

// BenchmarkWriteEnricherBatch writes one enricher batch (256 or 1,000
// records of ~1.4 KB JSON, LZ4) per call over 6 partitions of an in-process
// kfake broker: the produce path as the enricher runs it, broker included,
// and the broker's allocations in B/op too: compare within one run.
func BenchmarkWriteEnricherBatch(b *testing.B) {
	const topic = "enriched"
	c := benchCluster(b, topic)
	for _, n := range []int{256, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			msgs := enricherBatch(n)
			w := benchWriter(b, c, topic, kafka.Lz4)
			b.SetBytes(payloadBytes(msgs))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeRequest is the client's share of BenchmarkWriteEnricherBatch
// without the network and the broker: one produce request for a 1,000
// record enricher batch over 6 partitions, LZ4, encoded as the transport
// encodes it (produce v8) and written to io.Discard.
func BenchmarkEncodeRequest(b *testing.B) {
	const topic = "enriched"
	c := benchCluster(b, topic)
	w := benchWriter(b, c, topic, kafka.Lz4)
	msgs := enricherBatch(1000)
	g, sts := requestSlots(b, w, msgs)
	size := payloadBytes(msgs)
	for _, afterGC := range []bool{false, true} {
		name := "pooled"
		if afterGC {
			name = "after-gc"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if afterGC {
					dropPools(b)
				}
				req, bs, err := w.produceRequest(msgs, g, sts, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if err := protocol.WriteRequest(io.Discard, 8, 1, "bench", req); err != nil {
					b.Fatal(err)
				}
				putBatches(bs)
			}
		})
	}
}

// BenchmarkCodecs encodes the produce request of BenchmarkEncodeRequest
// with each codec, reporting MB/s of payload and the compression ratio
// (payload / request bytes): the CPU the enricher spends on its output
// against the bytes the broker stores.
func BenchmarkCodecs(b *testing.B) {
	const topic = "enriched"
	c := benchCluster(b, topic)
	msgs := enricherBatch(1000)
	size := payloadBytes(msgs)
	for _, comp := range []kafka.Compression{0, kafka.Lz4, kafka.Snappy, kafka.Zstd} {
		name := "none"
		if comp != 0 {
			name = comp.String()
		}
		b.Run(name, func(b *testing.B) {
			w := benchWriter(b, c, topic, comp)
			g, sts := requestSlots(b, w, msgs)
			var out countWriter
			b.SetBytes(size)
			for b.Loop() {
				req, bs, err := w.produceRequest(msgs, g, sts, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if err := protocol.WriteRequest(&out, 8, 1, "bench", req); err != nil {
					b.Fatal(err)
				}
				putBatches(bs)
			}
			b.ReportMetric(float64(size)*float64(b.N)/float64(out), "ratio")
		})
	}
}

// requestSlots groups msgs by partition as WriteMessages does and returns
// the grouping (released when the benchmark ends) and the state of every
// slot with records: what produceRequest needs to encode one request.
func requestSlots(b *testing.B, w *Writer, msgs []kafka.Message) (*grouping, []*slotState) {
	g, err := w.group(context.Background(), msgs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.release)
	var sts []*slotState
	for s := range g.slots() {
		_, _, idx := g.slot(s)
		if len(idx) > 0 {
			sts = append(sts, &slotState{slot: s, end: w.chunkEnd(msgs, idx, 0)})
		}
	}
	return g, sts
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// benchCluster starts an in-process kfake broker with topic in 6
// partitions, closed when the benchmark ends.
func benchCluster(b *testing.B, topic string) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// dropPools empties the sync.Pools outside the timer, as a collection does
// in a busy process: twice, because a pool survives one collection.
func dropPools(b *testing.B) {
	b.StopTimer()
	runtime.GC()
	runtime.GC()
	b.StartTimer()
}

// benchWriter returns a Writer to topic on c compressing with comp, with a
// transport of its own, both closed when the benchmark ends.
func benchWriter(b *testing.B, c *kfake.Cluster, topic string, comp kafka.Compression) *Writer {
	transport := &kafka.Transport{}
	b.Cleanup(transport.CloseIdleConnections)
	w, err := New(Config{Brokers: c.ListenAddrs(), Topic: topic, Compression: comp, Transport: transport})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	return w
}

// payloadBytes is the keys and values of msgs, for b.SetBytes.
func payloadBytes(msgs []kafka.Message) int64 {
	var n int64
	for i := range msgs {
		n += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
	return n
}
