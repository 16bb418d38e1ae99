package runner

import (
	"context"
	"errors"
	"strings"
	"sync"
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
	secondDelivery := make(chan struct{})
	var mu sync.Mutex
	var committed []int64
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 1,
		Deliver: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 1 {
				close(secondDelivery)
			}
			return nil
		}),
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			if b.In[0].Offset == 0 {
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
			committed = append(committed, b.In[0].Offset)
			return nil
		})}
	err := r.Run(context.Background(), context.Background())
	if err == nil || !strings.Contains(err.Error(), "broker refused") {
		t.Fatalf("Run returned %v, want the delivery error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(committed) != 2 || committed[0] != 0 || committed[1] != 1 {
		t.Fatalf("committed %v, want exactly [0 1]", committed)
	}
}

// A failed commit stops the runner, and no later batch is committed.
func TestCommitFailureStops(t *testing.T) {
	src := feed(6)
	var mu sync.Mutex
	var committed []int64
	r := &Runner{Source: src, MaxBatch: 1, Linger: time.Millisecond, Prepare: nop, InFlight: 2, Deliver: nop,
		Commit: pipeline.StageFunc(func(_ context.Context, b *pipeline.Batch) error {
			mu.Lock()
			defer mu.Unlock()
			if b.In[0].Offset == 1 {
				return errors.New("coordinator gone")
			}
			committed = append(committed, b.In[0].Offset)
			return nil
		})}
	err := r.Run(context.Background(), context.Background())
	if err == nil || !strings.Contains(err.Error(), "coordinator gone") {
		t.Fatalf("Run returned %v, want the commit error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(committed) != 1 || committed[0] != 0 {
		t.Fatalf("committed %v, want exactly [0]", committed)
	}
}
