// Package runner drives the enricher's consume loop as a pipeline of up to
// three goroutines: one fetches a batch of raw records and prepares it
// (enrichment), the next delivers prepared batches (produce), the last
// commits delivered batches' offsets, each strictly in the order the
// batches were fetched. Preparing batch n+1 and producing it overlap the
// broker round trips of batch n, and offsets are still committed in order
// and never past a record that was not produced.
//
// Committing apart from producing matters for latency, not safety: a record
// is readable downstream once produced, and on a busy broker an offset
// commit is a round trip as long as the produce (~9 ms each at 5,000 hits/s
// in docs/performance.md), which every later batch would otherwise wait for.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// Source is the part of *kafka.Reader the runner uses.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// Runner fetches batches from Source, runs Prepare on them in the fetching
// goroutine, Deliver in a second goroutine and Commit in a third, in fetch
// order.
type Runner struct {
	Source Source
	// Prepare runs in the fetching goroutine: stateful enrichment belongs
	// here, because it sees every record exactly once and in order.
	Prepare pipeline.Stage
	// Deliver runs in the delivery goroutine: produce.
	Deliver pipeline.Stage
	// Commit, if set, runs in the commit goroutine on each batch Deliver
	// succeeded on, never on a batch after one that failed. Without it,
	// Deliver must commit too.
	Commit pipeline.Stage
	// MaxBatch bounds the records in one batch.
	MaxBatch int
	// Linger is how long to wait for more records after the first one of a
	// batch: it trades a little latency for fewer, larger produce calls.
	Linger time.Duration
	// InFlight is how many prepared batches may wait for delivery, and
	// delivered ones for their commit (at least 1). Memory is bounded by
	// 2×InFlight+3 batches.
	InFlight int
	// FetchBackoff is the wait after a failed fetch, doubling up to
	// FetchBackoffMax. kafka-go hands consumer-group errors (a broker that
	// went away, a coordinator moving) to a waiting FetchMessage; they are
	// transient, so the runner waits and fetches again instead of exiting.
	FetchBackoff, FetchBackoffMax time.Duration
	// OnFetchError, if set, is told of each failed fetch that will be retried.
	OnFetchError func(err error, wait time.Duration)
}

// Run fetches until fetchCtx ends, then delivers the batches in hand and
// returns nil. Deliver and Commit run under workCtx, which the caller ends
// only when the shutdown deadline passes. A stage error stops the runner without
// committing that batch or any later one: their records are consumed again
// after a restart.
func (r *Runner) Run(fetchCtx, workCtx context.Context) error {
	inFlight := max(r.InFlight, 1)
	total := 2*inFlight + 3
	free := make(chan *pipeline.Batch, total)
	for range total {
		free <- &pipeline.Batch{}
	}
	ready := make(chan *pipeline.Batch, inFlight)
	// stop ends fetching early when delivery or a commit fails.
	fetchCtx, stop := context.WithCancel(fetchCtx)
	defer stop()

	var delivered chan *pipeline.Batch
	committed := make(chan error, 1)
	if r.Commit != nil {
		delivered = make(chan *pipeline.Batch, inFlight)
		go func() {
			committed <- r.drain(delivered, nil, free, stop, func(b *pipeline.Batch) error {
				if err := r.Commit.Process(workCtx, b); err != nil {
					return fmt.Errorf("offsets of a produced batch of %d records left uncommitted: %w", len(b.In), err)
				}
				return nil
			})
		}()
	} else {
		committed <- nil
	}
	deliverDone := make(chan error, 1)
	go func() {
		deliverDone <- r.drain(ready, delivered, free, stop, func(b *pipeline.Batch) error {
			if err := r.Deliver.Process(workCtx, b); err != nil {
				return fmt.Errorf("batch of %d records left uncommitted: %w", len(b.In), err)
			}
			return nil
		})
	}()

	ferr := r.fetchLoop(fetchCtx, free, ready)
	close(ready)
	derr := <-deliverDone
	cerr := <-committed
	switch {
	case derr != nil:
		return derr
	case cerr != nil:
		return cerr
	case ferr != nil && fetchCtx.Err() == nil:
		return ferr
	}
	return nil
}

// drain runs step on every batch from in, in order, and passes each batch
// it succeeded on to next (or back to free when next is nil). After a
// failure it stops the runner and only recycles what still arrives: no
// later batch reaches the next step. It closes next when in is closed.
func (r *Runner) drain(in <-chan *pipeline.Batch, next chan<- *pipeline.Batch, free chan<- *pipeline.Batch,
	stop func(), step func(*pipeline.Batch) error) error {
	var err error
	for b := range in {
		if err == nil {
			if err = step(b); err != nil {
				stop()
			} else if next != nil {
				next <- b
				continue
			}
		}
		b.Reset()
		free <- b
	}
	if next != nil {
		close(next)
	}
	return err
}

func (r *Runner) fetchLoop(ctx context.Context, free chan *pipeline.Batch, ready chan<- *pipeline.Batch) error {
	wait := r.FetchBackoff
	for {
		var b *pipeline.Batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return nil
		}
		ferr := r.fill(ctx, b)
		if len(b.In) > 0 {
			if err := r.Prepare.Process(ctx, b); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			ready <- b
		} else {
			free <- b // nothing fetched: the batch goes back unused
		}
		switch {
		case ferr == nil:
			wait = r.FetchBackoff
		case ctx.Err() != nil:
			return nil
		case errors.Is(ferr, io.EOF) || errors.Is(ferr, io.ErrClosedPipe):
			return fmt.Errorf("fetch: reader closed: %w", ferr)
		default:
			wait = max(wait, time.Millisecond)
			if r.OnFetchError != nil {
				r.OnFetchError(ferr, wait)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, max(r.FetchBackoffMax, wait))
		}
	}
}

// fill blocks for the first record, then takes what arrives within Linger.
func (r *Runner) fill(ctx context.Context, b *pipeline.Batch) error {
	m, err := r.Source.FetchMessage(ctx)
	if err != nil {
		return err
	}
	b.In = append(b.In, m)
	if r.MaxBatch <= 1 {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, r.Linger)
	defer cancel()
	for len(b.In) < r.MaxBatch {
		m, err := r.Source.FetchMessage(lctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return nil
			}
			return err
		}
		b.In = append(b.In, m)
	}
	return nil
}
