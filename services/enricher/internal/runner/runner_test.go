package runner

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// chanSource serves records from a channel like kafka.Reader.FetchMessage.
type chanSource struct{ ch chan kafka.Message }

func (s chanSource) FetchMessage(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-s.ch:
		return m, nil
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	}
}

var nop = pipeline.StageFunc(func(context.Context, *pipeline.Batch) error { return nil })

func TestBatchesInOrderAndBounded(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 100)}
	for i := range 25 {
		src.ch <- kafka.Message{Offset: int64(i)}
	}
	var mu sync.Mutex
	var seen []int64
	var sizes []int
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 10, Linger: 20 * time.Millisecond, Prepare: nop, InFlight: 2,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(b.In))
			for _, m := range b.In {
				seen = append(seen, m.Offset)
			}
			if len(seen) == 25 {
				cancel()
			}
			return nil
		})}
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, off := range seen {
		if off != int64(i) {
			t.Fatalf("out of order: %v", seen)
		}
	}
	for _, n := range sizes {
		if n > 10 {
			t.Fatalf("batch of %d > max", n)
		}
	}
	if len(seen) != 25 {
		t.Fatalf("processed %d", len(seen))
	}
}

func TestStageErrorStopsWithoutContinuing(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 10)}
	src.ch <- kafka.Message{Offset: 1}
	calls := 0
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop,
		Deliver: pipeline.StageFunc(func(context.Context, *pipeline.Batch) error { calls++; return errors.New("broker gone") })}
	err := r.Run(context.Background(), context.Background())
	if err == nil || calls != 1 {
		t.Fatalf("err=%v calls=%d", err, calls)
	}
}

// On shutdown the batch in hand is still processed with the work context.
func TestShutdownFinishesBatchInHand(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 10)}
	src.ch <- kafka.Message{Offset: 1}
	fetchCtx, cancel := context.WithCancel(context.Background())
	processed := 0
	r := &Runner{Source: src, MaxBatch: 100, Linger: time.Hour, Prepare: nop,
		Deliver: pipeline.StageFunc(func(ctx context.Context, b *pipeline.Batch) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			processed += len(b.In)
			return nil
		})}
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := r.Run(fetchCtx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if processed != 1 {
		t.Fatalf("processed %d, want the lingering record finished", processed)
	}
}

// A failed delivery stops the runner: no later batch is delivered (so none
// is committed past the failed one), even though later ones were prepared.
func TestDeliveryFailureStopsLaterBatches(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 100)}
	for i := range 50 {
		src.ch <- kafka.Message{Offset: int64(i)}
	}
	var delivered []int64
	prepared := 0
	r := &Runner{Source: src, MaxBatch: 5, Linger: time.Millisecond, InFlight: 3,
		Prepare: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error { prepared += len(b.In); return nil }),
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset >= 10 {
				return errors.New("broker gone")
			}
			for _, m := range b.In {
				delivered = append(delivered, m.Offset)
			}
			return nil
		})}
	err := r.Run(context.Background(), context.Background())
	if err == nil {
		t.Fatal("want error")
	}
	if len(delivered) != 10 || delivered[9] != 9 {
		t.Fatalf("delivered %v: want exactly offsets 0..9", delivered)
	}
}

// flakySource fails its first fetches like kafka-go does while the broker is
// away, then serves records.
type flakySource struct {
	chanSource
	failures int
}

func (s *flakySource) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if s.failures > 0 {
		s.failures--
		return kafka.Message{}, errors.New("failed to dial: connection refused")
	}
	return s.chanSource.FetchMessage(ctx)
}

// A broker outage seen while idle is waited out, not fatal.
func TestFetchErrorsAreRetried(t *testing.T) {
	src := &flakySource{chanSource: chanSource{make(chan kafka.Message, 10)}, failures: 3}
	src.ch <- kafka.Message{Offset: 7}
	ctx, cancel := context.WithCancel(context.Background())
	retries := 0
	var got []int64
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop,
		FetchBackoff: time.Millisecond, FetchBackoffMax: 4 * time.Millisecond,
		OnFetchError: func(error, time.Duration) { retries++ },
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			got = append(got, b.In[0].Offset)
			cancel()
			return nil
		})}
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatalf("fetch errors ended the runner: %v", err)
	}
	if retries != 3 || len(got) != 1 || got[0] != 7 {
		t.Fatalf("retries %d, delivered %v", retries, got)
	}
}

// feed returns a source holding records with offsets 0..n-1.
func feed(n int) chanSource {
	src := chanSource{make(chan kafka.Message, n)}
	for i := range n {
		src.ch <- kafka.Message{Offset: int64(i)}
	}
	return src
}

// With a Commit stage, producing batch n+1 does not wait for the commit of
// batch n: here the first commit blocks until the second delivery started.
func TestCommitOverlapsNextDelivery(t *testing.T) {
	src := feed(2)
	// The second delivery starts only once the first commit has: otherwise
	// the two batches may be committed together.
	firstCommit, secondDelivery := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var committed []int64
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 1,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 1 {
				select {
				case <-firstCommit:
				case <-time.After(5 * time.Second):
					return errors.New("the first commit did not start")
				}
				close(secondDelivery)
			}
			return nil
		}),
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 0 {
				close(firstCommit)
				select {
				case <-secondDelivery:
				case <-time.After(5 * time.Second):
					return errors.New("the second batch was not delivered while the first one's commit was pending")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			committed = append(committed, b.In[0].Offset)
			if len(committed) == 2 {
				cancel()
			}
			return nil
		})}
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(committed) != 2 || committed[0] != 0 || committed[1] != 1 {
		t.Fatalf("committed %v, want [0 1] in order", committed)
	}
}

// A failed delivery is never followed by a commit of that batch or a later
// one, although later batches may already have been fetched and prepared.
func TestNoCommitAfterFailedDelivery(t *testing.T) {
	src := feed(6)
	var mu sync.Mutex
	var committed []int64
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 2,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 2 {
				return errors.New("broker refused")
			}
			return nil
		}),
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range b.In {
				committed = append(committed, m.Offset)
			}
			return nil
		})}
	err := r.Run(context.Background(), context.Background())
	if err == nil || !strings.Contains(err.Error(), "broker refused") {
		t.Fatalf("Run returned %v, want the delivery error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Batches 0 and 1 may be committed apart or together (then as offset 1).
	if len(committed) == 0 || slices.Max(committed) != 1 {
		t.Fatalf("committed %v, want offset 1 committed and nothing after it", committed)
	}
}

// A failed commit stops the runner, and nothing is committed after it.
func TestCommitFailureStops(t *testing.T) {
	src := feed(6)
	var mu sync.Mutex
	calls := 0
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 2, Deliver: nop,
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 2 {
				return errors.New("coordinator gone")
			}
			return nil
		})}
	err := r.Run(context.Background(), context.Background())
	if err == nil || !strings.Contains(err.Error(), "coordinator gone") {
		t.Fatalf("Run returned %v, want the commit error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d commit calls, want 2: none after the failed one", calls)
	}
}

// Batches delivered while a commit is in flight are committed in one call
// holding the newest record of each partition.
func TestCommitsCoalesce(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 8)}
	for i := range 8 {
		src.ch <- kafka.Message{Topic: "raw", Partition: i % 2, Offset: int64(i / 2)}
	}
	var delivered atomic.Int32
	firstCommit, allDelivered := make(chan struct{}), make(chan struct{})
	var calls [][]kafka.Message
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 8,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if m := b.In[0]; m.Partition != 0 || m.Offset != 0 {
				<-firstCommit // the others queue up behind the first batch's commit
			}
			if delivered.Add(1) == 8 {
				close(allDelivered)
			}
			return nil
		}),
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if len(calls) == 0 {
				close(firstCommit)
				select {
				case <-allDelivered:
				case <-time.After(5 * time.Second):
					return errors.New("the other batches were not delivered during the first commit")
				}
				time.Sleep(10 * time.Millisecond) // let the last one reach the commit queue
			}
			calls = append(calls, slices.Clone(b.In))
			if b.In[len(b.In)-1].Offset == 3 {
				cancel()
			}
			return nil
		})}
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("%d commit calls (%v), want 2: the first batch, then the seven queued behind it", len(calls), calls)
	}
	got := map[int]int64{}
	for _, m := range calls[1] {
		if _, dup := got[m.Partition]; dup || m.Topic != "raw" {
			t.Fatalf("second commit %v: want one record per partition", calls[1])
		}
		got[m.Partition] = m.Offset
	}
	if len(got) != 2 || got[0] != 3 || got[1] != 3 {
		t.Fatalf("second commit %v, want offset 3 of partitions 0 and 1", calls[1])
	}
}

// Past its linger, a batch keeps filling while the previous one is still
// being delivered, and goes as soon as delivery is free: records that
// arrive during a slow produce ride in one batch, not in a queue of small
// ones.
func TestBatchFillsWhileDelivering(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 100)}
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 100, Linger: time.Millisecond, Prepare: nop, InFlight: 2,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 0 {
				<-release
			}
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(b.In))
			if b.In[len(b.In)-1].Offset == 10 {
				cancel()
			}
			return nil
		})}
	go func() {
		src.ch <- kafka.Message{Offset: 0}
		time.Sleep(20 * time.Millisecond) // batch 0 is in delivery
		for i := 1; i <= 10; i++ {
			src.ch <- kafka.Message{Offset: int64(i)}
			time.Sleep(3 * time.Millisecond) // each well past the linger
		}
		close(release)
	}()
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != 10 {
		t.Fatalf("batch sizes %v, want [1 10]: the records that arrived during the first delivery in one batch", sizes)
	}
}

// With a commit interval, batches delivered after a commit wait for the
// interval (here longer than the test) and are committed together when the
// runner stops, as the newest record of each partition: none is lost and
// none is committed early.
func TestCommitIntervalDefersToShutdown(t *testing.T) {
	src := chanSource{make(chan kafka.Message, 8)}
	for i := range 8 {
		src.ch <- kafka.Message{Topic: "raw", Partition: i % 2, Offset: int64(i / 2)}
	}
	var delivered atomic.Int32
	firstCommit, allDelivered := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var calls [][]kafka.Message
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 8, CommitInterval: time.Hour,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if m := b.In[0]; m.Partition != 0 || m.Offset != 0 {
				<-firstCommit
			}
			if delivered.Add(1) == 8 {
				close(allDelivered)
			}
			return nil
		}),
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if len(calls) == 0 {
				close(firstCommit)
			}
			calls = append(calls, slices.Clone(b.In))
			return nil
		})}
	go func() {
		<-allDelivered
		time.Sleep(50 * time.Millisecond) // the batches reach the commit loop and wait there
		mu.Lock()
		if len(calls) != 1 {
			t.Errorf("%d commits before shutdown, want only the first: %v", len(calls), calls)
		}
		mu.Unlock()
		cancel()
	}()
	if err := r.Run(ctx, context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("%d commit calls (%v), want 2: the first batch, then the rest at shutdown", len(calls), calls)
	}
	if len(calls[0]) != 1 || calls[0][0].Partition != 0 || calls[0][0].Offset != 0 {
		t.Fatalf("first commit %v, want partition 0 offset 0", calls[0])
	}
	got := map[int]int64{}
	for _, m := range calls[1] {
		got[m.Partition] = m.Offset
	}
	if len(calls[1]) != 2 || got[0] != 3 || got[1] != 3 {
		t.Fatalf("commit at shutdown %v, want offset 3 of partitions 0 and 1", calls[1])
	}
}

// A batch that waits for the interval is committed when it passes, without
// another batch or a shutdown to push it out, and not before.
func TestCommitIntervalTimerCommits(t *testing.T) {
	const interval = 100 * time.Millisecond
	src := chanSource{make(chan kafka.Message, 2)}
	src.ch <- kafka.Message{Offset: 0}
	type commit struct {
		off int64
		at  time.Time
	}
	committed := make(chan commit, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 1, Deliver: nop,
		CommitInterval: interval,
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			committed <- commit{b.In[0].Offset, time.Now()}
			return nil
		})}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, context.Background()) }()
	first := <-committed
	if first.off != 0 {
		t.Fatalf("first commit at offset %d", first.off)
	}
	src.ch <- kafka.Message{Offset: 1}
	select {
	case c := <-committed:
		if c.off != 1 {
			t.Fatalf("second commit at offset %d, want 1", c.off)
		}
		if gap := c.at.Sub(first.at); gap < interval {
			t.Fatalf("commits %v apart, want at least the interval %v", gap, interval)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting batch was never committed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// releasingSource is a chanSource that records which offsets were released.
type releasingSource struct {
	chanSource
	mu       sync.Mutex
	released map[int64]int
	early    []int64 // released before delivery
	isDone   func(off int64) bool
}

func (s *releasingSource) Release(msgs []kafka.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		s.released[m.Offset]++
		if !s.isDone(m.Offset) {
			s.early = append(s.early, m.Offset)
		}
	}
}

// Every record is released exactly once, only after its batch was
// delivered, whether it is then committed at once or with later batches,
// and also when delivery fails and the batch is abandoned.
func TestRecordsReleasedOnceAfterDelivery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		failAt   int64 // delivery of the batch holding this offset fails; -1 never
	}{
		{"commit each batch", 0, -1},
		{"commit interval", time.Hour, -1},
		{"delivery fails", 0, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 40
			var mu sync.Mutex
			delivered := map[int64]bool{}
			src := &releasingSource{chanSource: feed(n), released: map[int64]int{}}
			src.isDone = func(off int64) bool {
				mu.Lock()
				defer mu.Unlock()
				return delivered[off] || off >= tc.failAt && tc.failAt >= 0
			}
			ctx, cancel := context.WithCancel(context.Background())
			var seen atomic.Int32
			r := &Runner{Source: src, MaxBatch: 3, Linger: time.Millisecond, Prepare: nop, InFlight: 2, CommitInterval: tc.interval,
				Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
					if tc.failAt >= 0 && b.In[len(b.In)-1].Offset >= tc.failAt {
						return errors.New("broker refused")
					}
					mu.Lock()
					for _, m := range b.In {
						delivered[m.Offset] = true
					}
					mu.Unlock()
					if seen.Add(int32(len(b.In))) == n {
						cancel()
					}
					return nil
				}),
				Commit: nop}
			err := r.Run(ctx, context.Background())
			if (err != nil) != (tc.failAt >= 0) {
				t.Fatalf("Run: %v", err)
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			if len(src.early) > 0 {
				t.Fatalf("released before delivery: %v", src.early)
			}
			for off, k := range src.released {
				if k != 1 {
					t.Fatalf("offset %d released %d times", off, k)
				}
			}
			if tc.failAt < 0 && len(src.released) != n {
				t.Fatalf("%d of %d records released", len(src.released), n)
			}
			if tc.failAt >= 0 && src.released[tc.failAt] != 1 {
				t.Fatalf("the failed batch's record %d was not released", tc.failAt)
			}
		})
	}
}
