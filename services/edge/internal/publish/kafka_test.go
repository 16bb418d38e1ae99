package publish

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func testSinkConfig(brokers []string, topic string) KafkaConfig {
	return KafkaConfig{
		Brokers: brokers, Topic: topic, ClientID: "edge-test",
		Compression: kafka.Lz4,
		MaxAttempts: 3, WriteBackoffMin: 10 * time.Millisecond, WriteBackoffMax: 50 * time.Millisecond,
		WriteTimeout: 2 * time.Second, ProbeInterval: 50 * time.Millisecond, Log: zap.NewNop(),
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func encoded(t testing.TB, n int) []kafka.Message {
	b := newBatch(n)
	for i := range n {
		r := new(hit.Raw)
		fill(r, i)
		b.add(newEntry(r))
	}
	return b.messages()
}

func TestSinkReadiness(t *testing.T) {
	const topic = "hits.raw"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()

	t.Run("topic exists", func(t *testing.T) {
		s, err := NewKafkaSink(testSinkConfig(brokers, topic))
		if err != nil {
			t.Fatal(err)
		}
		defer closeSink(t, s)
		eventually(t, "ready", func() bool { return s.Ready() == nil })
	})
	t.Run("topic missing", func(t *testing.T) {
		s, err := NewKafkaSink(testSinkConfig(brokers, "no.such.topic"))
		if err != nil {
			t.Fatal(err)
		}
		defer closeSink(t, s)
		time.Sleep(200 * time.Millisecond)
		err = s.Ready()
		if err == nil || !strings.Contains(err.Error(), "no.such.topic") {
			t.Fatalf("Ready() = %v, want an error naming the topic", err)
		}
		// Auto-creation stays off: writing does not create the topic.
		if err := s.Write(context.Background(), encoded(t, 1)); err == nil {
			t.Fatal("write to a missing topic succeeded")
		}
	})
	t.Run("broker goes away", func(t *testing.T) {
		s, err := NewKafkaSink(testSinkConfig(brokers, topic))
		if err != nil {
			t.Fatal(err)
		}
		defer closeSink(t, s)
		if err := s.Write(context.Background(), encoded(t, 10)); err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(); err != nil {
			t.Fatalf("not ready after a good write: %v", err)
		}
		c.Close()
		eventually(t, "not ready", func() bool { return s.Ready() != nil })
		if err := s.Write(context.Background(), encoded(t, 3)); err == nil {
			t.Fatal("write succeeded with the broker gone")
		}
	})
}

// TestProbeNeverCreatesTopics: Apache Kafka's auto.create.topics.enable
// defaults to true, and kafka-go's Conn.ReadPartitions asks for
// auto-creation, so a careless probe would create the topic with broker
// defaults.
func TestProbeNeverCreatesTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := NewKafkaSink(testSinkConfig(c.ListenAddrs(), "not.created"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	time.Sleep(300 * time.Millisecond) // several probes
	if err := s.Ready(); err == nil {
		t.Fatal("ready without the topic")
	}
	if err := s.Write(context.Background(), encoded(t, 1)); err == nil {
		t.Fatal("write created the topic")
	}
	if info := c.TopicInfo("not.created"); info != nil {
		t.Fatalf("the sink created the topic: %+v", info)
	}
}

func TestSinkUnreachableBroker(t *testing.T) {
	// Port 1 on loopback refuses connections: every attempt fails fast.
	s, err := NewKafkaSink(testSinkConfig([]string{"127.0.0.1:1"}, "hits.raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	start := time.Now()
	err = s.Write(context.Background(), encoded(t, 2))
	if err == nil {
		t.Fatal("write to an unreachable broker succeeded")
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		t.Fatalf("metadata failure reported per message: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("3 attempts took %v", d)
	}
	if s.Ready() == nil {
		t.Fatal("ready with an unreachable broker")
	}
}

// TestSinkCloseIsBounded covers the writer's Close waiting for a produce
// that is being retried against a dead broker.
func TestSinkCloseIsBounded(t *testing.T) {
	const topic = "hits.raw"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testSinkConfig(c.ListenAddrs(), topic)
	cfg.MaxAttempts = 6
	cfg.WriteBackoffMin, cfg.WriteBackoffMax = 200*time.Millisecond, 200*time.Millisecond
	s, err := NewKafkaSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), encoded(t, 1)); err != nil {
		t.Fatal(err) // metadata is now cached: the next write goes straight to produce
	}
	c.Close()
	writeDone := make(chan error, 1)
	go func() { writeDone <- s.Write(context.Background(), encoded(t, 1)) }()
	time.Sleep(100 * time.Millisecond) // let the produce start retrying

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v with a 150ms bound", d)
	}
	if err := <-writeDone; err == nil {
		t.Fatal("write to a dead broker succeeded")
	}
	// The abandoned Close finishes in the background once the retries are
	// spent; goleak in TestMain checks nothing is left behind.
	time.Sleep(300 * time.Millisecond)
}

func TestSinkWithKafkatestCluster(t *testing.T) {
	brokers := kafkatest.NewCluster(t, "t1")
	s, err := NewKafkaSink(testSinkConfig(brokers, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink(t, s)
	msgs := encoded(t, 5)
	if err := s.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := kafkatest.ReadAll(t, brokers, "t1", 5, 10*time.Second); len(got) != 5 {
		t.Fatalf("read %d", len(got))
	}
}

func TestNewKafkaSinkValidates(t *testing.T) {
	if _, err := NewKafkaSink(KafkaConfig{Topic: "x"}); !errors.Is(err, ErrNoBrokers) {
		t.Fatalf("no brokers: %v", err)
	}
	if _, err := NewKafkaSink(KafkaConfig{Brokers: []string{"a:1"}}); err == nil {
		t.Fatal("no topic accepted")
	}
}
