package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"

	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fill makes r look like a real hit: realistic sizes matter for the
// encoding benchmark and the compression comparison.
func fill(r *hit.Raw, i int) {
	now := time.Now().UnixNano()
	r.SchemaVersion = hit.SchemaVersion
	r.EventID = hit.NewEventID(now)
	r.ReceivedAtNs = now
	r.APIKey = append(r.APIKey, "shop-key-1"...)
	r.ProjectID = append(r.ProjectID, "shop"...)
	r.ClientIP = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
	r.UserAgent = append(r.UserAgent, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"...)
	r.Referer = append(r.Referer, "https://shop.example.com/"...)
	r.Host = append(r.Host, "track.example.com"...)
	r.Query = fmt.Appendf(r.Query, "key=shop-key-1&url=https%%3A%%2F%%2Fshop.example.com%%2Fproducts%%2F%d%%3Futm_source%%3Dnewsletter%%26utm_medium%%3Demail&cb=%d", i, now)
	r.AcceptLanguage = append(r.AcceptLanguage, "en-GB,en;q=0.9,de;q=0.8"...)
	r.DNT = i%3 == 0
	r.Hints.UA = append(r.Hints.UA, `"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`...)
	r.Hints.Mobile = append(r.Hints.Mobile, "?0"...)
	r.Hints.Platform = append(r.Hints.Platform, `"Windows"`...)
	r.EdgeInstance = append(r.EdgeInstance, "edge-7f9c"...)
	r.Method = append(r.Method, "GET"...)
}

// snapshot copies the parts of r a test compares after r was recycled.
func snapshot(r *hit.Raw) (id hit.EventID, key []byte) {
	return r.EventID, hit.AppendVisitorKey(nil, r.ProjectID, r.ClientIP, r.UserAgent)
}

func closeSink(t testing.TB, s *KafkaSink) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("closing the sink: %v", err)
	}
}

// funcSink adapts a function to Sink.
type funcSink func(ctx context.Context, msgs []kafka.Message) error

func (f funcSink) Write(ctx context.Context, msgs []kafka.Message) error { return f(ctx, msgs) }

func newPublisher(t testing.TB, cfg Config) (*Publisher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	cfg.Registerer = reg
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 64
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 16
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func dropped(t testing.TB, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pixelstream_edge_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestPublishToKafka(t *testing.T) {
	const topic = "hits.raw"
	brokers := kafkatest.NewCluster(t, topic)
	sink, err := NewKafkaSink(KafkaConfig{
		Brokers: brokers, Topic: topic, ClientID: "edge-test",
		Compression: kafka.Lz4,
		MaxAttempts: 3, ProbeInterval: 50 * time.Millisecond, Log: zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	p, reg := newPublisher(t, Config{Sink: sink, QueueSize: n})
	// Cleanups run last-in first-out: publisher first, then the sink, the
	// order main uses (the writer's Close must not race a write).
	t.Cleanup(func() { closeSink(t, sink) })
	t.Cleanup(func() { _ = p.Close(context.Background()) })

	want := map[hit.EventID][]byte{}
	for i := range n {
		r := p.NewRecord()
		fill(r, i)
		id, key := snapshot(r)
		want[id] = key
		if !p.Publish(r) {
			t.Fatalf("record %d dropped", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.published); got != n {
		t.Fatalf("published_total = %v, want %d", got, n)
	}
	msgs := kafkatest.ReadAll(t, brokers, topic, n, 20*time.Second)
	if len(msgs) != n {
		t.Fatalf("read %d records, want %d", len(msgs), n)
	}
	partitions := map[int]bool{}
	for _, m := range msgs {
		var r hit.Raw
		if err := r.Unmarshal(m.Value); err != nil {
			t.Fatalf("offset %d: %v", m.Offset, err)
		}
		key, ok := want[r.EventID]
		if !ok {
			t.Fatalf("unexpected or duplicate event %s", r.EventID)
		}
		delete(want, r.EventID)
		if !bytes.Equal(m.Key, key) {
			t.Errorf("event %s: key %q, want visitor key %q", r.EventID, m.Key, key)
		}
		if string(r.ProjectID) != "shop" || r.SchemaVersion != hit.SchemaVersion || !r.ClientIP.Is4() {
			t.Errorf("event %s decoded wrong: %+v", r.EventID, r)
		}
		if m.Time.UnixMilli() != r.ReceivedAtNs/1e6 {
			t.Errorf("record time %v, receive time %d", m.Time, r.ReceivedAtNs)
		}
		partitions[m.Partition] = true
	}
	if len(partitions) < 2 {
		t.Errorf("%d visitors landed on %d partition(s)", n, len(partitions))
	}
	if err := sink.Ready(); err != nil {
		t.Errorf("sink not ready after writes: %v", err)
	}
	if got := dropped(t, reg, ReasonQueueFull) + dropped(t, reg, ReasonPublishFailed); got != 0 {
		t.Errorf("dropped %v", got)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	gate := make(chan struct{})
	var written atomic.Int64
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		<-gate
		written.Add(int64(len(msgs)))
		return nil
	})
	p, reg := newPublisher(t, Config{Sink: sink, QueueSize: 4, Workers: 1, BatchSize: 1})

	// The worker holds one record inside the stuck sink, the queue holds
	// four; everything else must be dropped at once.
	const n = 1000
	start := time.Now()
	accepted := 0
	for i := range n {
		r := p.NewRecord()
		fill(r, i)
		if p.Publish(r) {
			accepted++
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing into a full queue took %v", d)
	}
	if accepted > 5 || accepted < 4 {
		t.Fatalf("accepted %d records with a 4-slot queue and one busy worker", accepted)
	}
	if got := dropped(t, reg, ReasonQueueFull); got != float64(n-accepted) {
		t.Fatalf("dropped{queue_full} = %v, want %d", got, n-accepted)
	}
	close(gate)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if written.Load() != int64(accepted) {
		t.Fatalf("wrote %d, accepted %d", written.Load(), accepted)
	}
}

func TestFailedRecordsCountedWithoutSpool(t *testing.T) {
	var calls atomic.Int64
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		calls.Add(1)
		return errors.New("dial tcp 127.0.0.1:9: connection refused")
	})
	p, reg := newPublisher(t, Config{Sink: sink})
	for i := range 50 {
		r := p.NewRecord()
		fill(r, i)
		p.Publish(r)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := dropped(t, reg, ReasonPublishFailed); got != 50 {
		t.Fatalf("dropped{publish_failed} = %v, want 50", got)
	}
}

func TestCloseFlushesQueue(t *testing.T) {
	var written atomic.Int64
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		time.Sleep(time.Millisecond)
		written.Add(int64(len(msgs)))
		return nil
	})
	p, _ := newPublisher(t, Config{Sink: sink, QueueSize: 1000, Workers: 2, BatchSize: 8})
	for i := range 1000 {
		r := p.NewRecord()
		fill(r, i)
		if !p.Publish(r) {
			t.Fatal("dropped")
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if written.Load() != 1000 {
		t.Fatalf("flushed %d of 1000", written.Load())
	}
	r := p.NewRecord()
	if p.Publish(r) {
		t.Fatal("publish after close accepted")
	}
}

func TestCloseDeadlineAbandonsStuckWrites(t *testing.T) {
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		<-ctx.Done() // a broker that never answers
		return ctx.Err()
	})
	p, reg := newPublisher(t, Config{Sink: sink, QueueSize: 100, Workers: 1, BatchSize: 10})
	for i := range 100 {
		r := p.NewRecord()
		fill(r, i)
		p.Publish(r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v past its deadline", d)
	}
	failed, shut := dropped(t, reg, ReasonPublishFailed), dropped(t, reg, ReasonShutdown)
	// The stuck write holds the worker's first batch: up to 10 records,
	// fewer if the worker woke before all were queued.
	if failed+shut != 100 || failed < 1 || failed > 10 {
		t.Fatalf("dropped publish_failed=%v shutdown=%v, want 1-10 and the rest of 100", failed, shut)
	}
}

// discardSink acknowledges everything at once.
type discardSink struct{ n atomic.Int64 }

func (d *discardSink) Write(_ context.Context, msgs []kafka.Message) error {
	d.n.Add(int64(len(msgs)))
	return nil
}

// A record's fields may point into the caller's buffers (the handler's
// request), so the record Publish takes back must keep no slice of them:
// the next NewRecord would otherwise hand out slices into a request that
// has gone, and an append would write into it.
func TestPublishForgetsTheRecord(t *testing.T) {
	p, _ := newPublisher(t, Config{Sink: &discardSink{}})
	defer p.Close(context.Background())
	r := p.NewRecord()
	fill(r, 1)
	p.Publish(r)
	// r is the pool's again; looked at here only to check it was cleared.
	if !reflect.ValueOf(*r).IsZero() {
		t.Fatalf("record still holds %+v after Publish", *r)
	}
}

// BenchmarkEncode measures turning one record into a Kafka message (visitor
// key plus protobuf value) in a pooled entry's buffers.
func BenchmarkEncode(b *testing.B) {
	r := new(hit.Raw)
	fill(r, 7)
	e := newEntry(r)
	b.SetBytes(int64(len(e.value)))
	e.free()
	b.ReportAllocs()
	for b.Loop() {
		newEntry(r).free()
	}
}

// BenchmarkPublish measures the hand-off as the handler makes it (a pooled
// record whose fields alias the request's bytes, encoded by Publish) plus
// the worker side (sink call, recycling) with a sink that returns at once.
func BenchmarkPublish(b *testing.B) {
	sink := &discardSink{}
	p, _ := newPublisher(b, Config{Sink: sink, QueueSize: 8192, Workers: 2, BatchSize: 256})
	tmpl := new(hit.Raw)
	fill(tmpl, 1)
	b.ReportAllocs()
	for b.Loop() {
		r := p.NewRecord()
		*r = *tmpl
		p.Publish(r)
	}
	b.StopTimer()
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// Past a quarter of the queue, each accepted hit yields the processor once
// to the workers, and is counted; below it nothing yields.
func TestPublishYieldsWhenQueueFills(t *testing.T) {
	gate := make(chan struct{})
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error { <-gate; return nil })
	p, _ := newPublisher(t, Config{Sink: sink, QueueSize: 16, Workers: 1, BatchSize: 1})
	var yields int
	p.yield = func() { yields++ }

	// The worker takes the first record into the stuck sink; the queue then
	// holds 1, 2, … records after each Publish. yieldAt is 16/4 = 4.
	r := p.NewRecord()
	fill(r, 0)
	p.Publish(r)
	deadline := time.Now().Add(5 * time.Second)
	for len(p.queue) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not take the first record")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 10; i++ {
		r := p.NewRecord()
		fill(r, i)
		if !p.Publish(r) {
			t.Fatalf("record %d dropped", i)
		}
	}
	// Queue lengths after each Publish: 1..10; those >= 4 yield: 7.
	if yields != 7 {
		t.Fatalf("%d yields, want 7 (queue lengths 4 to 10)", yields)
	}
	counted := testutil.ToFloat64(p.yields)
	if counted != 7 {
		t.Fatalf("pixelstream_edge_publish_yields_total = %v, want 7", counted)
	}
	close(gate)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// publishFilled publishes n filled records and fails if one is refused.
func publishFilled(t *testing.T, p *Publisher, n int) {
	t.Helper()
	for i := range n {
		r := p.NewRecord()
		fill(r, i)
		if !p.Publish(r) {
			t.Fatal("queue refused a record")
		}
	}
}

// TestLinger: a worker holding a part batch waits up to Linger for more
// records, and writes a full batch without waiting.
func TestLinger(t *testing.T) {
	const linger = 300 * time.Millisecond
	type write struct {
		n  int
		at time.Time
	}
	writes := make(chan write, 16)
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		writes <- write{len(msgs), time.Now()}
		return nil
	})
	p, _ := newPublisher(t, Config{Sink: sink, QueueSize: 64, Workers: 1, BatchSize: 8, Linger: linger})
	defer func() {
		if err := p.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	publish := func(n int) { publishFilled(t, p, n) }

	start := time.Now()
	publish(3)
	w := <-writes
	if w.n != 3 || w.at.Sub(start) < linger*9/10 {
		t.Fatalf("part batch: wrote %d records after %v, want 3 after about %v", w.n, w.at.Sub(start), linger)
	}

	// The worker is asleep in its linger when the rest of the batch comes:
	// Publish wakes it.
	start = time.Now()
	publish(1)
	time.Sleep(linger / 6)
	publish(7)
	w = <-writes
	if w.n != 8 || w.at.Sub(start) >= linger*2/3 {
		t.Fatalf("full batch: wrote %d records after %v, want 8 well before the %v linger", w.n, w.at.Sub(start), linger)
	}
}

// TestHoldBehindWrites: past its linger a part batch waits for the write in
// flight to end, and a held batch that fills goes out beside it at once.
func TestHoldBehindWrites(t *testing.T) {
	const linger = 20 * time.Millisecond
	started := make(chan int, 16)
	release := make(chan struct{})
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		started <- len(msgs)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	p, _ := newPublisher(t, Config{Sink: sink, QueueSize: 64, Workers: 2, BatchSize: 8, Linger: linger})
	publish := func(n int) { publishFilled(t, p, n) }
	// expect waits for the next write to start and checks its size.
	expect := func(what string, want int) {
		select {
		case n := <-started:
			if n != want {
				t.Fatalf("%s carried %d records, want %d", what, n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no write started", what)
		}
	}
	// held checks that no write starts for d, while one is in flight.
	held := func(d time.Duration) {
		select {
		case n := <-started:
			t.Fatalf("a part batch of %d went out while a write was in flight", n)
		case <-time.After(d):
		}
	}

	publish(3)
	expect("first batch", 3)
	publish(3)
	held(10 * linger)
	release <- struct{}{} // the first write ends
	expect("held batch", 3)
	// The second write is in flight; a held batch that fills does not
	// wait for it.
	publish(3)
	held(5 * linger)
	publish(5)
	expect("filled batch", 8)
	close(release)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.published); got != 14 {
		t.Fatalf("published_total = %v, want 14", got)
	}
}
