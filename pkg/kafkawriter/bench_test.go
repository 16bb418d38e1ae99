package kafkawriter

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BenchmarkWriteMessages writes 1,024 edge-sized records per call over 6
// partitions of an in-process kfake broker, through this Writer and through
// kafka-go's Writer configured as the edge had it (5 ms batch timeout,
// BatchSize = the call's size). The broker's own work is in both; compare
// B/op and allocs/op, and time in the same run.
func BenchmarkWriteMessages(b *testing.B) {
	const topic = "bench"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, topic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
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
