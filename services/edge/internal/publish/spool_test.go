package publish

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/services/edge/internal/spool"
)

// switchSink is a Kafka that can be taken down (it refuses every write,
// as kafka-go does once its attempts are spent) or made slow (writes wait
// on a gate). It records the sequence numbers it acknowledged, in order.
type switchSink struct {
	mu    sync.Mutex
	down  bool
	gate  chan struct{} // non-nil: writes wait for it to close (or ctx)
	acked []int
}

func (s *switchSink) set(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *switchSink) Write(ctx context.Context, msgs []kafka.Message) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("kafka.(*Writer).WriteMessages: dial tcp 127.0.0.1:9: connect: connection refused")
	}
	for _, m := range msgs {
		s.acked = append(s.acked, seqOfValue(m.Value))
	}
	return nil
}

// release makes a slow sink fast again: writes waiting on gate go on, and
// later writes no longer wait.
func (s *switchSink) release(gate chan struct{}) {
	s.mu.Lock()
	s.gate = nil
	s.mu.Unlock()
	close(gate)
}

// closeInOrder waits until n records reached Kafka, closes p, and checks
// that they arrived in order and nothing was dropped.
func closeInOrder(t *testing.T, p *Publisher, sink *switchSink, reg *prometheus.Registry, n int) {
	t.Helper()
	sink.waitFor(t, n, 20*time.Second)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	order, _ := sink.distinct()
	checkOrder(t, order, n)
	noDrops(t, reg)
}

func seqOfValue(v []byte) int {
	var r hit.Raw
	if err := r.Unmarshal(v); err != nil {
		panic(err)
	}
	n, err := strconv.Atoi(string(r.Referer))
	if err != nil {
		panic(err)
	}
	return n
}

// distinct returns the acknowledged sequence numbers in the order of their
// first acknowledgement, and how many were duplicates.
func (s *switchSink) distinct() (order []int, dups int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[int]bool{}
	for _, n := range s.acked {
		if seen[n] {
			dups++
			continue
		}
		seen[n] = true
		order = append(order, n)
	}
	return order, dups
}

func (s *switchSink) waitFor(t *testing.T, n int, timeout time.Duration) []int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		order, _ := s.distinct()
		if len(order) >= n {
			return order
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records reached Kafka within %v", len(order), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkOrder(t *testing.T, order []int, n int) {
	t.Helper()
	if len(order) != n {
		t.Fatalf("%d distinct records, want %d", len(order), n)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("record %d reached Kafka at position %d: order broken (%v...)", got, i, order[max(0, i-3):min(len(order), i+3)])
		}
	}
}

func newSpool(t *testing.T, dir string, maxBytes int64) *spool.Spool {
	t.Helper()
	s, err := spool.Open(spool.Config{Dir: dir, MaxBytes: maxBytes, SyncEvery: 1000, SyncInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func publishSeq(t *testing.T, p *Publisher, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r := p.NewRecord()
		fill(r, i)
		r.Referer = strconv.AppendInt(r.Referer[:0], int64(i), 10)
		if !p.Publish(r) {
			t.Fatalf("record %d dropped by Publish", i)
		}
	}
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func noDrops(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	for _, reason := range []string{ReasonQueueFull, ReasonPublishFailed, ReasonShutdown, ReasonSpoolFull, ReasonSpoolError} {
		if n := dropped(t, reg, reason); n != 0 {
			t.Errorf("dropped{%s} = %v", reason, n)
		}
	}
}

var fastReplay = Config{ReplayBackoffMin: 5 * time.Millisecond, ReplayBackoffMax: 20 * time.Millisecond}

func withSpool(cfg Config, sink Sink, sp Spool) Config {
	cfg.Sink, cfg.Spool = sink, sp
	cfg.ReplayBackoffMin, cfg.ReplayBackoffMax = fastReplay.ReplayBackoffMin, fastReplay.ReplayBackoffMax
	return cfg
}

// TestOutageSpoolsThenReplaysInOrder: Kafka goes down, the hits go to the
// spool; it comes back, the spool drains, in order, while new hits keep
// coming, and none overtakes a spooled one.
func TestOutageSpoolsThenReplaysInOrder(t *testing.T) {
	sink := &switchSink{}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, sink, sp))

	publishSeq(t, p, 0, 100)
	sink.waitFor(t, 100, 10*time.Second)

	sink.set(true)
	publishSeq(t, p, 100, 300)
	eventuallyTrue(t, "200 records spooled", func() bool { return testutil.ToFloat64(p.spooled) == 200 })
	if !p.Spooling() {
		t.Fatal("not spooling during the outage")
	}

	sink.set(false)
	publishSeq(t, p, 300, 400) // accepted while the spool drains
	order := sink.waitFor(t, 400, 20*time.Second)
	eventuallyTrue(t, "direct writes again", func() bool { return !p.Spooling() })
	publishSeq(t, p, 400, 450)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	order, dups := sink.distinct()
	checkOrder(t, order, 450)
	noDrops(t, reg)
	if got := testutil.ToFloat64(p.replayed); got < 200 {
		t.Errorf("spool_replayed_total = %v, want at least 200", got)
	}
	if got := testutil.ToFloat64(p.fallbackKept); got == 0 {
		t.Error("fallback_kept_total = 0: the refused batch did not go to the spool's front")
	}
	t.Logf("%d duplicates; spooled %v, replayed %v", dups, testutil.ToFloat64(p.spooled), testutil.ToFloat64(p.replayed))
}

// TestOutageWithConcurrentWorkers: with several workers nothing is lost
// or dropped; order is only kept between batches taken off the queue one
// after the other (see docs/edge.md).
func TestOutageWithConcurrentWorkers(t *testing.T) {
	sink := &switchSink{}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 4096, Workers: 4, BatchSize: 16}, sink, sp))
	publishSeq(t, p, 0, 500)
	sink.set(true)
	publishSeq(t, p, 500, 2000)
	time.Sleep(50 * time.Millisecond)
	sink.set(false)
	publishSeq(t, p, 2000, 3000)
	sink.waitFor(t, 3000, 20*time.Second)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	noDrops(t, reg)
}

// TestRestartReplaysSpool: hits spooled by one publisher (Kafka down at
// shutdown) are replayed by the next one, before the hits it takes.
func TestRestartReplaysSpool(t *testing.T) {
	dir := t.TempDir()
	down := &switchSink{down: true}
	sp := newSpool(t, dir, 1<<30)
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, down, sp))
	publishSeq(t, p, 0, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	noDrops(t, reg)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	up := &switchSink{}
	sp = newSpool(t, dir, 1<<30)
	defer sp.Close()
	p, reg = newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, up, sp))
	if !p.Spooling() {
		t.Fatal("a publisher over a non-empty spool must start spooling")
	}
	publishSeq(t, p, 200, 300)
	up.waitFor(t, 300, 20*time.Second)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	order, _ := up.distinct()
	checkOrder(t, order, 300)
	noDrops(t, reg)
}

// TestSpoolFullDropsAndRecovers: a full spool drops and counts hits and
// reports itself; it recovers as it drains.
func TestSpoolFullDropsAndRecovers(t *testing.T) {
	sink := &switchSink{down: true}
	sp := newSpool(t, t.TempDir(), 32<<10)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, sink, sp))
	const n = 500
	publishSeq(t, p, 0, n)
	eventuallyTrue(t, "every record settled", func() bool {
		return testutil.ToFloat64(p.spooled)+dropped(t, reg, ReasonSpoolFull) == n
	})
	full, kept := dropped(t, reg, ReasonSpoolFull), testutil.ToFloat64(p.spooled)
	if full == 0 || kept == 0 {
		t.Fatalf("spooled %v, dropped{spool_full} %v: want both", kept, full)
	}
	if err := sp.Full(); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Full() = %v", err)
	}
	if sp.Bytes() > 32<<10 {
		t.Fatalf("spool holds %d bytes over its bound", sp.Bytes())
	}
	sink.set(false)
	sink.waitFor(t, int(kept), 20*time.Second)
	eventuallyTrue(t, "spool no longer full", func() bool { return sp.Full() == nil })
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSlowKafkaSpills: writes hang (a slow broker); the queue would fill
// and drop, but the spiller moves it to the spool; when the broker speeds
// up everything arrives, in order.
func TestSlowKafkaSpills(t *testing.T) {
	gate := make(chan struct{})
	sink := &switchSink{gate: gate}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 512, Workers: 1, BatchSize: 4, SpillAt: 32}, sink, sp))
	// 5,000 hits/s: well within what the spool appends even under the race
	// detector on a busy machine; the queue alone (512) could not hold them.
	for i := 0; i < 2000; i += 10 {
		publishSeq(t, p, i, i+10)
		time.Sleep(2 * time.Millisecond)
	}
	if !p.Spooling() {
		t.Fatal("not spooling while Kafka hangs")
	}
	sink.release(gate)
	closeInOrder(t, p, sink, reg, 2000)
}

// TestShutdownSpoolsWhatKafkaDidNotTake: Kafka hangs at shutdown; every
// queued record and every record in an abandoned write is spooled, none
// dropped, within the deadline.
func TestShutdownSpoolsWhatKafkaDidNotTake(t *testing.T) {
	gate := make(chan struct{}) // never closed: a broker that never answers
	sink := &switchSink{gate: gate}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 2, BatchSize: 8, SpillAt: 1024}, sink, sp))
	publishSeq(t, p, 0, 500)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 1100*time.Millisecond {
		t.Fatalf("Close took %v with a 1s deadline", d)
	}
	noDrops(t, reg)
	if got := testutil.ToFloat64(p.spooled); got != 500 {
		t.Fatalf("spooled %v of 500", got)
	}
	seen := map[int]bool{}
	for {
		b, err := sp.Take(1000, 100*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			break
		}
		for _, m := range b.Msgs {
			seen[seqOfValue(m.Value)] = true
		}
		_ = sp.Commit(b)
	}
	if len(seen) != 500 {
		t.Fatalf("%d distinct records in the spool, want 500", len(seen))
	}
}

// TestDiskFull puts the spool on a tiny tmpfs (root only; skipped where
// mounting is not allowed): out-of-space writes are counted drops, never a
// crash, and the spool recovers when space returns.
func TestDiskFull(t *testing.T) {
	t.Run("space freed", func(t *testing.T) { testDiskFull(t, false) })
	// Kafka returns and the spool drains with no new write to the spool:
	// readiness must recover all the same. (The fault test on a real tmpfs
	// found it stuck when the last failed write was a replay front file;
	// this unit test does not reproduce that ordering, it guards the rule.)
	t.Run("kafka back", func(t *testing.T) { testDiskFull(t, true) })
}

func testDiskFull(t *testing.T, kafkaBack bool) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	}()
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 300<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := &switchSink{down: true}
	sp := newSpool(t, filepath.Join(dir, "spool"), 1<<30) // the bound is not what stops it
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, sink, sp))
	const n = 1000 // ~600 KB of records: more than the tmpfs holds
	for i := 0; i < n; i += 100 {
		publishSeq(t, p, i, i+100)
		time.Sleep(20 * time.Millisecond)
	}
	eventuallyTrue(t, "every record settled", func() bool {
		return testutil.ToFloat64(p.spooled)+dropped(t, reg, ReasonSpoolFull)+dropped(t, reg, ReasonSpoolError) == n
	})
	if dropped(t, reg, ReasonSpoolFull) == 0 {
		t.Fatalf("no spool_full drops on a full disk (spool_error %v)", dropped(t, reg, ReasonSpoolError))
	}
	if err := sp.Full(); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Full() = %v, want ENOSPC", err)
	}
	kept := int(testutil.ToFloat64(p.spooled))

	if kafkaBack {
		sink.set(false)
		sink.waitFor(t, kept, 20*time.Second)
		eventuallyTrue(t, "drained spool is ready again", func() bool { return sp.Full() == nil })
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		return
	}

	// Space returns: the next writes succeed and readiness recovers.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	publishSeq(t, p, n, n+10)
	eventuallyTrue(t, "spool writes again", func() bool { return sp.Full() == nil })
	sink.set(false)
	sink.waitFor(t, kept+10, 20*time.Second)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayDropsWhatKafkaNeverTakes: a spooled record the broker refuses
// for good (too large) is dropped and counted, not retried forever in front
// of the rest of the spool.
func TestReplayDropsWhatKafkaNeverTakes(t *testing.T) {
	var mu sync.Mutex
	down := true
	var acked []int
	sink := funcSink(func(ctx context.Context, msgs []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.New("connection refused")
		}
		werrs := make(kafka.WriteErrors, len(msgs))
		for i, m := range msgs {
			if n := seqOfValue(m.Value); n%10 == 3 {
				werrs[i] = kafka.MessageSizeTooLarge
			} else {
				acked = append(acked, n)
			}
		}
		if werrs.Count() == 0 {
			return nil
		}
		return werrs
	})
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 8}, sink, sp))
	publishSeq(t, p, 0, 100)
	eventuallyTrue(t, "all spooled", func() bool { return testutil.ToFloat64(p.spooled) == 100 })
	mu.Lock()
	down = false
	mu.Unlock()
	eventuallyTrue(t, "replayed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) == 90
	})
	eventuallyTrue(t, "direct again", func() bool { return !p.Spooling() })
	if got := dropped(t, reg, ReasonPublishFailed); got != 10 {
		t.Errorf("dropped{publish_failed} = %v, want 10", got)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A queue past its spill mark with Kafka hanging for SlowWrite spools, long
// before the queue is nearly full.
func TestSlowWriteSpillsBeforeQueueIsFull(t *testing.T) {
	gate := make(chan struct{})
	sink := &switchSink{gate: gate}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 4, SpillAt: 32, SlowWrite: 50 * time.Millisecond}, sink, sp))
	publishSeq(t, p, 0, 100) // the worker takes 4 into the hanging write; 96 queued, past 32, far below 992
	time.Sleep(60 * time.Millisecond)
	if p.Spooling() {
		t.Fatal("spooling although no hit was published since the mark was passed")
	}
	publishSeq(t, p, 100, 101) // signals the spiller, which now sees a write older than SlowWrite
	eventuallyTrue(t, "spooling after a write hung for SlowWrite", p.Spooling)
	sink.release(gate)
	closeInOrder(t, p, sink, reg, 101)
}

// delaySink acknowledges every write after a fixed delay: a healthy broker
// behind a busy edge.
type delaySink struct {
	delay time.Duration
	n     atomic.Int64
}

func (s *delaySink) Write(ctx context.Context, msgs []kafka.Message) error {
	time.Sleep(s.delay)
	s.n.Add(int64(len(msgs)))
	return nil
}

// A queue past its spill mark while Kafka answers promptly is a CPU-bound
// edge, not a slow Kafka: no spooling (which would cost more CPU per hit)
// until the queue is nearly full, and then only the excess goes to disk,
// without spooling mode; every hit still reaches Kafka.
func TestBusyButHealthyKafkaDoesNotSpill(t *testing.T) {
	sink := &delaySink{delay: 5 * time.Millisecond}
	sp := newSpool(t, t.TempDir(), 1<<30)
	defer sp.Close()
	// One worker writing 1 record per 5 ms: 200/s. 300 hits at once fill
	// the queue past 32 and keep it there for over a second.
	core, logs := observer.New(zap.WarnLevel)
	p, reg := newPublisher(t, withSpool(Config{QueueSize: 1024, Workers: 1, BatchSize: 1, SpillAt: 32, ReplayBatchSize: 256,
		Log: zap.New(core)}, sink, sp))
	publishSeq(t, p, 0, 300)
	time.Sleep(200 * time.Millisecond)
	publishSeq(t, p, 300, 301)
	time.Sleep(50 * time.Millisecond)
	if p.Spooling() || testutil.ToFloat64(p.spooled) != 0 {
		t.Fatal("spooled with Kafka answering every write in 5 ms and the queue far from full")
	}
	// Filled to the brim (992 of 1024), the excess goes to the spool,
	// while new hits keep going direct.
	publishSeq(t, p, 301, 1060)
	eventuallyTrue(t, "the excess moved to the spool", func() bool {
		return testutil.ToFloat64(p.overflowed) > 0
	})
	if p.Spooling() {
		t.Fatal("in spooling mode after an overflow with Kafka healthy")
	}
	// The warning says how busy the writes were, which tells a short CPU
	// from writes slower than the queue lasts (here: 5 ms writes, one at
	// a time).
	warned := logs.FilterMessageSnippet("moved the oldest hits to the spool").All()
	if len(warned) == 0 {
		t.Fatal("no overflow warning logged")
	}
	fields := warned[0].ContextMap()
	if w, ok := fields["writes_in_flight"].(int64); !ok || w > 1 {
		t.Errorf("writes_in_flight = %v, want 0 or 1 (one worker)", fields["writes_in_flight"])
	}
	if d, ok := fields["oldest_write"].(time.Duration); !ok || d >= 500*time.Millisecond {
		t.Errorf("oldest_write = %v, want a duration under SlowWrite", fields["oldest_write"])
	}
	over := testutil.ToFloat64(p.overflowed)
	if spooled := testutil.ToFloat64(p.spooled); spooled != over {
		t.Fatalf("spooled %v, overflow %v: only the overflow should have gone to disk", spooled, over)
	}
	eventuallyTrue(t, "every record written to Kafka, directly or replayed", func() bool { return sink.n.Load() >= 1060 })
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	noDrops(t, reg)
	if got := sink.n.Load(); got != 1060 {
		t.Fatalf("Kafka took %d records, want 1060", got)
	}
	t.Logf("%v of 1060 hits overflowed to the spool", over)
}
