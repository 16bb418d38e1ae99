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
	"sync/atomic"
	"time"

	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// Source is the part of the group consumer (internal/consumer) the runner
// uses.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// Releaser is implemented by a Source whose records borrow memory it
// reuses (internal/consumer). The runner releases each batch's records
// once nothing reads their bytes any more: when the batch is delivered
// (the commit keeps only their positions), or abandoned after a failure.
type Releaser interface {
	Release(msgs []kafka.Message)
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
	// Commit, if set, runs in the commit goroutine on the batches Deliver
	// succeeded on, never on a batch after one that failed. Batches
	// delivered while a commit was in flight are committed together, as one
	// batch holding the newest record of each partition: offsets are
	// cumulative, so that commits them all, and a slow group coordinator
	// (a commit round trip took 9-19 ms in docs/performance.md) cannot hold
	// back the batches behind it. Without Commit, Deliver must commit too.
	Commit pipeline.Stage
	// MaxBatch bounds the records in one batch.
	MaxBatch int
	// Linger is how long to wait for more records after the first one of a
	// batch: it trades a little latency for fewer, larger produce calls.
	// Past it, a batch keeps filling (up to MaxBatch) only while an
	// earlier one is still being delivered, as Kafka's producer batches
	// behind its in-flight request: handing it over would only queue it,
	// and one larger produce call replaces several queued ones.
	Linger time.Duration
	// CommitInterval is the least time between two commits. Delivered
	// batches are recycled at once and only their newest offset per
	// partition waits, so a longer interval costs no memory and never holds
	// up fetching. Each commit is a write to __consumer_offsets on the
	// broker, which shares its CPU with everything else; what waits is
	// only re-read after a crash or rebalance (at-least-once). 0 commits
	// every group of batches as soon as the previous commit returns.
	CommitInterval time.Duration
	// InFlight is how many prepared batches may wait for delivery, and
	// delivered ones for their commit (at least 1). Memory is bounded by
	// 2×InFlight+3 batches.
	InFlight int
	// FetchBackoff is the wait after a failed fetch, doubling up to
	// FetchBackoffMax: a Source error other than io.EOF is taken as
	// transient, so the runner waits and fetches again instead of exiting.
	// (internal/consumer retries broker errors itself and returns only the
	// context's error or io.EOF; this covers any other Source.)
	FetchBackoff, FetchBackoffMax time.Duration
	// OnFetchError, if set, is told of each failed fetch that will be retried.
	OnFetchError func(err error, wait time.Duration)

	// undelivered counts batches handed to delivery and not yet through it.
	undelivered atomic.Int32
}

// lingerPoll is how often a batch past its linger checks whether delivery
// has caught up, when no record arrives meanwhile.
const lingerPoll = time.Millisecond

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
		go func() { committed <- r.commitLoop(workCtx, delivered, free, stop) }()
	} else {
		committed <- nil
	}
	deliverDone := make(chan error, 1)
	go func() {
		deliverDone <- r.deliverLoop(ready, delivered, free, stop, func(b *pipeline.Batch) error {
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

// recycle releases b's records to the Source and returns b to free.
func (r *Runner) recycle(b *pipeline.Batch, free chan<- *pipeline.Batch) {
	if rel, ok := r.Source.(Releaser); ok {
		rel.Release(b.In)
	}
	b.Reset()
	free <- b
}

// deliverLoop runs step (delivery) on every batch from in, in order, and
// passes each batch it succeeded on to next (or back to free when next is
// nil). After a failure it stops the runner and only recycles what still
// arrives: no later batch reaches the next step. Every batch taken from in
// leaves the undelivered count. It closes next when in is closed.
func (r *Runner) deliverLoop(in <-chan *pipeline.Batch, next chan<- *pipeline.Batch, free chan<- *pipeline.Batch,
	stop func(), step func(*pipeline.Batch) error) error {
	var err error
	for b := range in {
		if err == nil {
			err = step(b)
			r.undelivered.Add(-1)
			if err != nil {
				stop()
			} else if next != nil {
				next <- b
				continue
			}
		} else {
			r.undelivered.Add(-1)
		}
		r.recycle(b, free)
	}
	if next != nil {
		close(next)
	}
	return err
}

// commitLoop commits delivered batches in order and recycles them. The
// newest offset of each partition in the batches delivered since the last
// commit waits in pending until CommitInterval has passed since it, or
// until in is closed; a batch not fully delivered (which Commit refuses)
// first flushes pending, then goes to Commit alone, so nothing after it
// is committed. After a failure it stops the runner and commits nothing
// more.
func (r *Runner) commitLoop(ctx context.Context, in <-chan *pipeline.Batch, free chan<- *pipeline.Batch, stop func()) error {
	var (
		err      error
		pending  = &pipeline.Batch{}
		batches  int // delivered batches merged into pending
		records  int // their records
		last     time.Time
		timer    *time.Timer
		deadline <-chan time.Time
	)
	commit := func(b *pipeline.Batch, n, records int) {
		if err != nil {
			return
		}
		if err = r.Commit.Process(ctx, b); err != nil {
			err = fmt.Errorf("offsets of %d produced records (%d batches) left uncommitted: %w", records, n, err)
			stop()
		}
		last = time.Now()
	}
	flush := func() {
		if batches > 0 {
			commit(pending, batches, records)
			pending.Reset()
			batches, records = 0, 0
		}
		if timer != nil {
			timer.Stop()
		}
		deadline = nil
	}
	for {
		select {
		case b, ok := <-in:
			if !ok {
				flush()
				return err
			}
			if err == nil {
				if b.Delivered() {
					pending.In = appendNewest(pending.In, b.In)
					batches++
					records += len(b.In)
				} else {
					flush()
					commit(b, 1, len(b.In))
				}
			}
			r.recycle(b, free)
			if batches == 0 || deadline != nil {
				continue
			}
			// Batches already queued join this commit (the interval is a
			// floor, not a delay to add when commits are rare).
			if wait := r.CommitInterval - time.Since(last); wait > 0 && len(in) == 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				deadline = timer.C
			} else if len(in) == 0 {
				flush()
			}
		case <-deadline:
			deadline = nil
			if len(in) == 0 {
				flush()
			}
		}
	}
}

// appendNewest merges msgs (in offset order per partition) into newest,
// which keeps one record per topic and partition: the one of highest offset.
// Only the topic, partition and offset are kept: the records' bytes are
// released before the merged commit.
func appendNewest(newest, msgs []kafka.Message) []kafka.Message {
next:
	for _, m := range msgs {
		pos := kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		for i := range newest {
			if newest[i].Partition == m.Partition && newest[i].Topic == m.Topic {
				newest[i] = pos
				continue next
			}
		}
		newest = append(newest, pos)
	}
	return newest
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
			r.undelivered.Add(1)
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

// fill blocks for the first record, then takes what arrives within
// Linger, and after it what arrives until delivery is idle.
func (r *Runner) fill(ctx context.Context, b *pipeline.Batch) error {
	m, err := r.Source.FetchMessage(ctx)
	if err != nil {
		return err
	}
	b.In = append(b.In, m)
	lctx, cancel := context.WithTimeout(ctx, r.Linger)
	err = r.fillUntil(ctx, lctx, b, false)
	cancel()
	// Still delivering: wait for records in short slices, so the batch
	// goes as soon as delivery is free.
	for err == nil && len(b.In) < r.MaxBatch && r.undelivered.Load() > 0 {
		pctx, cancel := context.WithTimeout(ctx, lingerPoll)
		err = r.fillUntil(ctx, pctx, b, true)
		cancel()
	}
	return err
}

// fillUntil appends records to b until MaxBatch or until lctx ends (not an
// error), and, if whileDelivering, until no batch is being delivered.
func (r *Runner) fillUntil(ctx, lctx context.Context, b *pipeline.Batch, whileDelivering bool) error {
	for len(b.In) < r.MaxBatch && !(whileDelivering && r.undelivered.Load() == 0) {
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
