// Package runner drives the enricher's consume loop: it fetches a batch of
// raw records, hands it to the pipeline (enrich, produce, commit) and only
// then fetches the next, so offsets are committed strictly in order and
// never past a record that was not produced.
package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// Source is the part of *kafka.Reader the runner uses.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// Runner fetches batches from Source and processes each with Stage.
type Runner struct {
	Source Source
	Stage  pipeline.Stage
	// MaxBatch bounds the records in one batch.
	MaxBatch int
	// Linger is how long to wait for more records after the first one of a
	// batch: it trades a little latency for fewer, larger produce calls.
	Linger time.Duration

	batch pipeline.Batch
}

// Run fetches until fetchCtx ends, then finishes the batch in hand and
// returns nil. Stages run under workCtx, which the caller ends only when the
// shutdown deadline passes. A stage error stops the runner without
// committing that batch: its records are consumed again after a restart.
func (r *Runner) Run(fetchCtx, workCtx context.Context) error {
	for {
		r.batch.Reset()
		ferr := r.fill(fetchCtx)
		if len(r.batch.In) > 0 {
			if err := r.Stage.Process(workCtx, &r.batch); err != nil {
				return fmt.Errorf("batch of %d records left uncommitted: %w", len(r.batch.In), err)
			}
		}
		if ferr != nil {
			if fetchCtx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", ferr)
		}
	}
}

// fill blocks for the first record, then takes what arrives within Linger.
func (r *Runner) fill(ctx context.Context) error {
	m, err := r.Source.FetchMessage(ctx)
	if err != nil {
		return err
	}
	r.batch.In = append(r.batch.In, m)
	if r.MaxBatch <= 1 {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, r.Linger)
	defer cancel()
	for len(r.batch.In) < r.MaxBatch {
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
		r.batch.In = append(r.batch.In, m)
	}
	return nil
}
