package kafkawriter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const partitions = 4

// cluster starts kfake with topic and returns it and its addresses.
func cluster(t *testing.T, topic string) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

func newWriter(t *testing.T, cfg Config) *Writer {
	t.Helper()
	transport := &kafka.Transport{MetadataTTL: time.Second}
	cfg.Transport = transport
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		transport.CloseIdleConnections()
	})
	return w
}

func messages(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:     fmt.Appendf(nil, "visitor-%d", i%37),
			Value:   fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("x"), i%300)),
			Headers: []kafka.Header{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
		}
	}
	return msgs
}

// TestWriteLandsWhereKafkaGoWould writes through every compression and
// checks each record arrived once, intact, in the partition kafka-go's
// Murmur2Balancer picks, in call order within the partition.
func TestWriteLandsWhereKafkaGoWould(t *testing.T) {
	for _, tc := range []struct {
		name       string
		comp       kafka.Compression
		batchBytes int64
	}{
		{"none", 0, 0},
		{"lz4", kafka.Lz4, 0},
		{"snappy", kafka.Snappy, 0},
		{"lz4 in small requests", kafka.Lz4, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "land"
			_, brokers := cluster(t, topic)
			w := newWriter(t, Config{Brokers: brokers, Topic: topic, Compression: tc.comp, BatchBytes: tc.batchBytes})
			msgs := messages(500)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, msgs[:300]...); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteMessages(ctx, msgs[300:]...); err != nil {
				t.Fatal(err)
			}
			got := kafkatest.ReadAll(t, brokers, topic, len(msgs), 20*time.Second)
			if len(got) != len(msgs) {
				t.Fatalf("read %d records, want %d", len(got), len(msgs))
			}
			parts := []int{0, 1, 2, 3}
			lastIndex := map[int]int{}
			seen := map[int]bool{}
			for _, m := range got {
				var n int
				if _, err := fmt.Sscanf(string(m.Headers[0].Value), "%d", &n); err != nil {
					t.Fatal(err)
				}
				if seen[n] {
					t.Fatalf("record %d arrived twice", n)
				}
				seen[n] = true
				want := msgs[n]
				if !bytes.Equal(m.Key, want.Key) || !bytes.Equal(m.Value, want.Value) {
					t.Fatalf("record %d: got key %q value %q", n, m.Key, m.Value)
				}
				if p := (&kafka.Murmur2Balancer{}).Balance(want, parts...); m.Partition != p {
					t.Fatalf("record %d in partition %d, kafka-go's Murmur2Balancer says %d", n, m.Partition, p)
				}
				if last, ok := lastIndex[m.Partition]; ok && n < last {
					t.Fatalf("partition %d: record %d after %d", m.Partition, n, last)
				}
				lastIndex[m.Partition] = n
			}
		})
	}
}

// answer makes the broker's response to a produce request without writing
// anything: every partition gets the error code code returns for it (0 for
// success).
func answer(req kmsg.Request, code func(partition int32) int16) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, pp := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = pp.Partition
			rp.ErrorCode = code(pp.Partition)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestUnansweredPartitionIsRetried: a produce response that leaves out a
// partition of the request settles nothing for it. Its records go out again
// in a request of their own, and the other partitions' are not resent.
func TestUnansweredPartitionIsRetried(t *testing.T) {
	const topic = "unanswered"
	c, brokers := cluster(t, topic)
	var requests atomic.Int32
	var second []int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if requests.Add(1) > 1 {
			for _, tp := range req.(*kmsg.ProduceRequest).Topics {
				for _, pp := range tp.Partitions {
					second = append(second, pp.Partition)
				}
			}
			return nil, nil, false
		}
		// The first request is answered, as if written, for every
		// partition but 2, and not written.
		resp := answer(req, func(int32) int16 { return 0 }).(*kmsg.ProduceResponse)
		for i := range resp.Topics {
			parts := resp.Topics[i].Partitions[:0]
			for _, rp := range resp.Topics[i].Partitions {
				if rp.Partition != 2 {
					parts = append(parts, rp)
				}
			}
			resp.Topics[i].Partitions = parts
		}
		return resp, nil, true
	})
	w := newWriter(t, Config{Brokers: brokers, Topic: topic, BackoffMin: time.Millisecond})
	msgs := messages(200)
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 || len(second) != 1 || second[0] != 2 {
		t.Fatalf("%d produce requests, the second for partitions %v; want 2, the second for partition 2 alone", n, second)
	}
	want := 0
	for i := range msgs {
		if (&kafka.Murmur2Balancer{}).Balance(msgs[i], 0, 1, 2, 3) == 2 {
			want++
		}
	}
	if want == 0 {
		t.Fatal("no record hashed to partition 2: the test tested nothing")
	}
	got := kafkatest.ReadAll(t, brokers, topic, want, 10*time.Second)
	for _, m := range got {
		if m.Partition != 2 {
			t.Fatalf("a record landed in partition %d, which only the first (unwritten) request carried", m.Partition)
		}
	}
	if len(got) != want {
		t.Fatalf("%d records landed in partition 2, want %d", len(got), want)
	}
}

// TestPartialFailure makes the broker refuse one partition of a request for
// good: exactly that partition's records are reported, the others are
// acknowledged.
func TestPartialFailure(t *testing.T) {
	const topic = "partial"
	c, brokers := cluster(t, topic)
	var requests, refused atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		return answer(req, func(p int32) int16 {
			if p != 2 {
				return 0
			}
			refused.Add(1)
			return int16(kafka.InvalidRecord) // permanent: not retried
		}), nil, true
	})
	w := newWriter(t, Config{Brokers: brokers, Topic: topic, Compression: kafka.Lz4})
	msgs := messages(200)
	err := w.WriteMessages(context.Background(), msgs...)
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		t.Fatalf("got %v, want kafka.WriteErrors of %d", err, len(msgs))
	}
	if requests.Load() != 1 || refused.Load() != 1 {
		t.Fatalf("%d produce requests, %d refusals of partition 2: want one request for all partitions, refused once",
			requests.Load(), refused.Load())
	}
	parts := []int{0, 1, 2, 3}
	var failed int
	for i, e := range werrs {
		p := (&kafka.Murmur2Balancer{}).Balance(msgs[i], parts...)
		switch {
		case p == 2 && !errors.Is(e, kafka.InvalidRecord):
			t.Fatalf("record %d (partition 2): error %v, want InvalidRecord", i, e)
		case p != 2 && e != nil:
			t.Fatalf("record %d (partition %d): unexpected error %v", i, p, e)
		case p == 2:
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no record hashed to partition 2: the test tested nothing")
	}
}

// TestOneRequestPerBrokerPerChunk: a call over every partition costs one
// produce request; with small BatchBytes each round carries the next chunk
// of every partition, so requests = the largest partition's chunk count.
func TestOneRequestPerBrokerPerChunk(t *testing.T) {
	const topic = "rounds"
	c, brokers := cluster(t, topic)
	var requests, maxParts atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		if n := int32(len(req.(*kmsg.ProduceRequest).Topics[0].Partitions)); n > maxParts.Load() {
			maxParts.Store(n)
		}
		return nil, nil, false
	})
	w := newWriter(t, Config{Brokers: brokers, Topic: topic, Compression: kafka.Lz4})
	if err := w.WriteMessages(context.Background(), messages(400)...); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 1 || maxParts.Load() != partitions {
		t.Fatalf("%d requests with up to %d partitions, want 1 with %d", requests.Load(), maxParts.Load(), partitions)
	}
}

// TestRetriesTemporaryErrors answers the first request with a retryable
// error: the retry lands every record exactly once.
func TestRetriesTemporaryErrors(t *testing.T) {
	const topic = "retry"
	c, brokers := cluster(t, topic)
	var calls atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if calls.Add(1) > 1 {
			return nil, nil, false
		}
		return answer(req, func(int32) int16 { return int16(kafka.RequestTimedOut) }), nil, true
	})
	w := newWriter(t, Config{Brokers: brokers, Topic: topic, BackoffMin: time.Millisecond})
	msgs := messages(1)
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d produce requests, want 2 (one refused, one retry)", got)
	}
	if got := kafkatest.ReadAll(t, brokers, topic, 0, 10*time.Second); len(got) != 1 {
		t.Fatalf("%d records landed, want 1", len(got))
	}
}

func TestErrorsBeforeSending(t *testing.T) {
	const topic = "before"
	_, brokers := cluster(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	w := newWriter(t, Config{Brokers: brokers, Topic: topic, BatchBytes: 100})
	big := kafka.Message{Value: bytes.Repeat([]byte("x"), 200)}
	var tooLarge kafka.MessageTooLargeError
	if err := w.WriteMessages(ctx, messages(1)[0], big); !errors.As(err, &tooLarge) || len(tooLarge.Remaining) != 1 {
		t.Fatalf("oversize record: got %v, want MessageTooLargeError with 1 remaining", err)
	}

	unknown := newWriter(t, Config{Brokers: brokers, Topic: "no-such-topic"})
	var werrs kafka.WriteErrors
	if err := unknown.WriteMessages(ctx, messages(1)...); err == nil || errors.As(err, &werrs) {
		t.Fatalf("unknown topic: got %v, want a whole-call error", err)
	}

	closed, err := New(Config{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closed.WriteMessages(ctx, messages(1)...); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("closed writer: got %v, want io.ErrClosedPipe", err)
	}

	if _, err := New(Config{Topic: topic}); err == nil {
		t.Error("New without brokers accepted")
	}

	both := messages(1)
	both[0].Topic = topic
	if err := w.WriteMessages(ctx, both...); !errors.Is(err, errTopic) {
		t.Fatalf("topic in Config and Message: got %v, want errTopic", err)
	}
	noTopic := newWriter(t, Config{Brokers: brokers})
	if err := noTopic.WriteMessages(ctx, messages(1)...); !errors.Is(err, errTopic) {
		t.Fatalf("no topic anywhere: got %v, want errTopic", err)
	}
}

// TestMixedTopics: without Config.Topic each message goes to its own topic,
// partitioned by that topic's partition count.
func TestMixedTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "mixed-a"), kfake.SeedTopics(1, "mixed-b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	w := newWriter(t, Config{Brokers: brokers, Compression: kafka.Lz4})
	msgs := messages(90)
	for i := range msgs {
		msgs[i].Topic = "mixed-a"
		if i%3 == 0 {
			msgs[i].Topic = "mixed-b"
		}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	a := kafkatest.ReadAll(t, brokers, "mixed-a", 60, 10*time.Second)
	b := kafkatest.ReadAll(t, brokers, "mixed-b", 30, 10*time.Second)
	if len(a) != 60 || len(b) != 30 {
		t.Fatalf("mixed-a %d records (want 60), mixed-b %d (want 30)", len(a), len(b))
	}
	for i, m := range b {
		if want := msgs[3*i].Value; !bytes.Equal(m.Value, want) {
			t.Fatalf("mixed-b record %d is %q, want %q (call order)", i, m.Value, want)
		}
	}
	for _, m := range a {
		var n int
		if _, err := fmt.Sscanf(string(m.Headers[0].Value), "%d", &n); err != nil {
			t.Fatal(err)
		}
		if p := (&kafka.Murmur2Balancer{}).Balance(msgs[n], 0, 1, 2, 3); n%3 == 0 || m.Partition != p {
			t.Fatalf("record %d in mixed-a/%d, want mixed-a/%d and n%%3 != 0", n, m.Partition, p)
		}
	}
}

// TestCloseWaitsForWrites: Close returns only after a write in flight
// settled, and that write's records landed.
func TestCloseWaitsForWrites(t *testing.T) {
	const topic = "closewait"
	c, brokers := cluster(t, topic)
	release := make(chan struct{})
	var held atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.CompareAndSwap(false, true) {
			<-release
		}
		return nil, nil, false
	})
	w, err := New(Config{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- w.WriteMessages(context.Background(), messages(1)...) }()
	for !held.Load() {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { _ = w.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a write was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	<-closed
}

// TestRefusedRequestSplits: a request spanning partitions that the
// transport refuses before sending (its layout puts them on different
// leaders than the one the Writer grouped them under) is marked
// errWholeRequest, and send then sends each partition on its own: every
// record lands once, and no produce request reaches a broker with more than
// one partition.
func TestRefusedRequestSplits(t *testing.T) {
	const topic = "refused"
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// kfake picks leaders at random: spread them over both brokers.
	for p := range int32(partitions) {
		if err := c.MoveTopicPartition(topic, p, p%2); err != nil {
			t.Fatal(err)
		}
	}
	brokers := c.ListenAddrs()
	var requests, multi atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if len(tp.Partitions) > 1 {
				multi.Add(1)
			}
		}
		return nil, nil, false
	})
	w := newWriter(t, Config{Brokers: brokers, Topic: topic, Compression: kafka.Lz4})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs := messages(200)
	g, err := w.group(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer g.release()
	leaders := map[int32]bool{}
	for _, l := range g.leader {
		leaders[l] = true
	}
	if len(leaders) < 2 {
		t.Fatalf("partition leaders %v: the test needs two", g.leader)
	}
	// The lie: one leader for all, so round puts every partition in one
	// request, which the transport's own layout refuses.
	for i := range g.leader {
		g.leader[i] = g.leader[0]
	}
	var sts []*slotState
	for s := range g.slots() {
		if _, _, idx := g.slot(s); len(idx) > 0 {
			sts = append(sts, &slotState{slot: s, end: w.chunkEnd(msgs, idx, 0)})
		}
	}
	if len(sts) < 2 {
		t.Fatalf("records in %d partitions: the test needs two", len(sts))
	}
	w.request(ctx, msgs, g, sts)
	for _, st := range sts {
		if !errors.Is(st.err, errWholeRequest) {
			t.Fatalf("slot %d: %v, want errWholeRequest", st.slot, st.err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d produce requests reached a broker, want 0 (refused before sending)", n)
	}
	w.send(ctx, msgs, g, func(idx []int32, err error) { t.Errorf("%d records failed: %v", len(idx), err) })
	if n, m := requests.Load(), multi.Load(); int(n) != len(sts) || m != 0 {
		t.Fatalf("%d produce requests, %d with several partitions; want %d, one per partition", n, m, len(sts))
	}
	got := kafkatest.ReadAll(t, brokers, topic, len(msgs), 20*time.Second)
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m.Headers[0].Value)] = true
	}
	if len(got) != len(msgs) || len(seen) != len(msgs) {
		t.Fatalf("read %d records (%d distinct), want %d", len(got), len(seen), len(msgs))
	}
}
