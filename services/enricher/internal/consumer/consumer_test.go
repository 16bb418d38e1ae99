package consumer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// brokers returns a kfake cluster, or with the integration switch on, the
// real broker (both with topic created, kafkatest.DefaultPartitions each).
type cluster func(t *testing.T, topic string) []string

var clusters = []struct {
	name string
	get  cluster
}{
	{"kfake", func(t *testing.T, topic string) []string { return kafkatest.NewCluster(t, topic) }},
	{"real broker", func(t *testing.T, topic string) []string {
		kafkatest.Integration(t)
		return kafkatest.Brokers(t, topic)
	}},
}

func write(t *testing.T, brokers []string, topic, prefix string, n int) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Transport:    tr,
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Hash{},
		Compression:  kafka.Lz4,
		BatchTimeout: time.Millisecond,
		BatchSize:    64,
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = kafka.Message{Key: []byte(v), Value: []byte(v), Headers: []kafka.Header{{Key: "h", Value: []byte(v)}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("writing %d records: %v", n, err)
	}
}

func newConsumer(t *testing.T, brokers []string, topic, group string) *Consumer {
	t.Helper()
	c, err := New(Config{Brokers: brokers, GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond,
		QueueCapacity: 16, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consume fetches n records (committing each batch of up to 10) and
// returns their values; it fails on a record seen twice or out of order.
func consume(t *testing.T, c *Consumer, n int) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string]bool{}
	last := map[int]int64{}
	var batch, held []kafka.Message
	var heldWant []string
	for len(got) < n {
		m, err := c.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d of %d: %v", len(got), n, err)
		}
		if string(m.Key) != string(m.Value) || len(m.Headers) != 1 || string(m.Headers[0].Value) != string(m.Value) {
			t.Fatalf("record %s/%d@%d: key %q, value %q, headers %v", m.Topic, m.Partition, m.Offset, m.Key, m.Value, m.Headers)
		}
		if o, ok := last[m.Partition]; ok && m.Offset != o+1 {
			t.Fatalf("partition %d: offset %d after %d", m.Partition, m.Offset, o)
		}
		last[m.Partition] = m.Offset
		if got[string(m.Value)] {
			t.Fatalf("%s read twice", m.Value)
		}
		got[string(m.Value)] = true
		if batch = append(batch, m); len(batch) == 10 || len(got) == n {
			if err := c.CommitMessages(ctx, batch...); err != nil {
				t.Fatalf("commit: %v", err)
			}
			// The previous batch was held while this one was fetched, as
			// the runner holds batches in flight: its bytes must still be
			// its own, though other batches' buffers were reused meanwhile.
			checkHeld(t, held, heldWant)
			c.Release(held)
			held, heldWant = append(held[:0], batch...), heldWant[:0]
			for _, m := range batch {
				heldWant = append(heldWant, string(m.Value))
			}
			batch = batch[:0]
		}
	}
	checkHeld(t, held, heldWant)
	c.Release(held)
	return got
}

func checkHeld(t *testing.T, held []kafka.Message, want []string) {
	t.Helper()
	for i, m := range held {
		if string(m.Value) != want[i] || string(m.Key) != want[i] || string(m.Headers[0].Value) != want[i] {
			t.Fatalf("held record %d@%d changed: key %q value %q header %q, want %q", m.Partition, m.Offset, m.Key, m.Value, m.Headers[0].Value, want[i])
		}
	}
}

// TestConsumeCommitResume: every record once, in partition order, with its
// key, value and headers; fewer fetch requests than partitions × records
// would take one by one; a new member of the group resumes after the
// committed offsets.
func TestConsumeCommitResume(t *testing.T) {
	for _, cl := range clusters {
		t.Run(cl.name, func(t *testing.T) {
			topic := kafkatest.UniqueTopic(t, "raw")
			brokers := cl.get(t, topic)
			group := kafkatest.UniqueTopic(t, "group")
			write(t, brokers, topic, "first", 300)

			c := newConsumer(t, brokers, topic, group)
			got := consume(t, c, 300)
			if len(got) != 300 {
				t.Fatalf("read %d distinct records, want 300", len(got))
			}
			// One request covers every partition of the broker: far fewer
			// requests than one per partition and batch.
			if f := c.Fetches(); f < 1 || f > 100 {
				t.Errorf("%d fetch requests for 300 records", f)
			}
			deadline := time.Now().Add(10 * time.Second)
			for c.Lag() != 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if l := c.Lag(); l != 0 {
				t.Errorf("lag %d after reading everything", l)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if _, err := c.FetchMessage(context.Background()); err != io.EOF {
				t.Errorf("FetchMessage after Close: %v, want io.EOF", err)
			}

			write(t, brokers, topic, "second", 50)
			c2 := newConsumer(t, brokers, topic, group)
			defer c2.Close()
			for v := range consume(t, c2, 50) {
				if v[:6] != "second" {
					t.Fatalf("resumed member read %s: the committed offsets were not honoured", v)
				}
			}
		})
	}
}

// TestOffsetOutOfRange: a committed offset past the end of a partition
// (the topic was recreated, or retention outran the group) restarts that
// partition from its oldest record instead of stalling.
func TestOffsetOutOfRange(t *testing.T) {
	topic := kafkatest.UniqueTopic(t, "raw")
	brokers := kafkatest.NewCluster(t, topic)
	group := kafkatest.UniqueTopic(t, "group")
	write(t, brokers, topic, "r", 30)

	c := newConsumer(t, brokers, topic, group)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := c.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Commit far past the end of m's partition.
	m.Offset = 1_000_000
	if err := c.CommitMessages(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := newConsumer(t, brokers, topic, group)
	defer c2.Close()
	if got := consume(t, c2, 30); len(got) != 30 {
		t.Fatalf("read %d records, want all 30 again", len(got))
	}
}

// TestTwoMembers: two members of one group share the partitions; across
// the rebalance every record is read (at least once), and a member
// commits nothing for a partition it no longer owns.
func TestTwoMembers(t *testing.T) {
	topic := kafkatest.UniqueTopic(t, "raw")
	brokers := kafkatest.NewCluster(t, topic)
	group := kafkatest.UniqueTopic(t, "group")
	const n = 600
	write(t, brokers, topic, "r", n)

	var mu sync.Mutex
	seen := map[string]bool{}
	parts := map[*Consumer]map[int]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := func(c *Consumer, wg *sync.WaitGroup) {
		defer wg.Done()
		for {
			m, err := c.FetchMessage(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			seen[string(m.Value)] = true
			if parts[c] == nil {
				parts[c] = map[int]bool{}
			}
			parts[c][m.Partition] = true
			done := len(seen) == n
			mu.Unlock()
			_ = c.CommitMessages(ctx, m) // fails while rebalancing: read again later
			if done {
				cancel()
			}
			mu.Lock()
			shared := len(parts) == 2
			mu.Unlock()
			if !shared {
				time.Sleep(20 * time.Millisecond) // leave records for the second member
			}
		}
	}
	a := newConsumer(t, brokers, topic, group)
	defer a.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go run(a, &wg)
	time.Sleep(500 * time.Millisecond)
	b := newConsumer(t, brokers, topic, group)
	defer b.Close()
	go run(b, &wg)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("the two members read %d of %d records", len(seen), n)
	}
	if len(parts[a]) == 0 || len(parts[b]) == 0 {
		t.Errorf("partitions read: first member %v, second %v; want both to get some", parts[a], parts[b])
	}

	// A commit for a partition this member does not own is not sent.
	a.mu.Lock()
	owned := a.owned
	a.mu.Unlock()
	for p := range kafkatest.DefaultPartitions {
		if !owned[p] {
			if err := a.CommitMessages(context.Background(), kafka.Message{Partition: p, Offset: 1_000_000}); err != nil {
				t.Fatalf("commit for unowned partition %d: %v", p, err)
			}
			off := committed(t, brokers, group, topic, p)
			if off >= 1_000_000 {
				t.Fatalf("partition %d: committed %d for a partition the member does not own", p, off)
			}
			return
		}
	}
	t.Logf("first member owns all partitions after the rebalance: %v", owned)
}

// committed returns the group's committed offset of a partition.
func committed(t *testing.T, brokers []string, group, topic string, partition int) int64 {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	res, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

// BenchmarkConsume: a new group member reading 20,000 lz4-compressed
// records over 3 partitions from an in-process kfake broker (its work is in
// the figures too, and the group join), this consumer against kafka-go's
// Reader, which the enricher used before.
func BenchmarkConsume(b *testing.B) {
	topic := "bench-raw"
	brokers := kafkatest.NewCluster(b, topic)
	const n = 20000
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Transport: tr, Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		Compression: kafka.Lz4, BatchSize: 1000, BatchTimeout: time.Millisecond}
	msgs := make([]kafka.Message, n)
	value := make([]byte, 420) // a raw hit's typical size
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "visitor-%d", i%997), Value: value}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		b.Fatal(err)
	}
	_ = w.Close()

	type source interface {
		FetchMessage(context.Context) (kafka.Message, error)
		Close() error
	}
	run := func(b *testing.B, open func(group string) source) {
		for i := 0; b.Loop(); i++ {
			c := open(fmt.Sprintf("bench-%s-%d", b.Name(), i))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			for range n {
				if _, err := c.FetchMessage(ctx); err != nil {
					b.Fatal(err)
				}
			}
			cancel()
			_ = c.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	}
	b.Run("consumer", func(b *testing.B) {
		run(b, func(group string) source {
			c, err := New(Config{Brokers: brokers, GroupID: group, Topic: topic, QueueCapacity: 1000, SessionTimeout: 6 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			return c
		})
	})
	b.Run("kafka-go-reader", func(b *testing.B) {
		rtr := &kafka.Transport{}
		defer rtr.CloseIdleConnections()
		run(b, func(group string) source {
			return kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topic,
				StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
				QueueCapacity: 1000, SessionTimeout: 6 * time.Second})
		})
	})
}

// TestRetryReported: while the broker is gone, failed fetches and joins
// reach OnRetry (the enricher counts them), and Close still returns.
func TestRetryReported(t *testing.T) {
	topic := kafkatest.UniqueTopic(t, "raw")
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(kafkatest.DefaultPartitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	brokers := cl.ListenAddrs()
	write(t, brokers, topic, "r", 5)
	retried := make(chan error, 100)
	c, err := New(Config{Brokers: brokers, GroupID: kafkatest.UniqueTopic(t, "group"), Topic: topic,
		MaxWait: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		OnRetry: func(err error, _ time.Duration) {
			select {
			case retried <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	consume(t, c, 5)
	cl.Close()
	select {
	case err := <-retried:
		t.Logf("retry reported: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no retry reported 30 s after the broker went away")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close blocked with the broker gone")
	}
}
