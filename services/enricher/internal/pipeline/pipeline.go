// Package pipeline defines the enricher's unit of work (a Batch of Kafka
// records) and the one small interface every stage implements. Retry and
// metrics are decorators around a Stage, so each stage holds only its own
// logic (the OpenTelemetry collector's consumer package and Jaeger's
// processor decorators follow the same shape).
package pipeline

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// Batch is a run of records fetched from the raw topic, in offset order per
// partition, and the records to produce for them.
type Batch struct {
	// In holds the fetched records. Their offsets are committed only after
	// every record in Out has been acknowledged by the broker.
	In []kafka.Message
	// Out holds the records to produce: an enriched record or a dead letter
	// for each input, in input order.
	Out []kafka.Message
	// Acked[i] is true once Out[i] is acknowledged; a retried produce
	// stage sends only the rest, so a partial failure is not duplicated.
	Acked []bool
	// Arena backs the values of Out, reused across batches so encoding
	// allocates nothing per record.
	Arena []byte
}

// Reset empties b for reuse, keeping capacity.
func (b *Batch) Reset() {
	clear(b.In)
	clear(b.Out)
	b.In = b.In[:0]
	b.Out = b.Out[:0]
	b.Acked = b.Acked[:0]
	b.Arena = b.Arena[:0]
}

// Pending returns the indexes of Out not yet acknowledged.
func (b *Batch) Pending() []int { return b.AppendPending(nil) }

// AppendPending appends the indexes of Out not yet acknowledged to dst.
func (b *Batch) AppendPending(dst []int) []int {
	for i := range b.Out {
		if i >= len(b.Acked) || !b.Acked[i] {
			dst = append(dst, i)
		}
	}
	return dst
}

// Delivered reports whether every record of Out is acknowledged: only then
// may the offsets of In be committed.
func (b *Batch) Delivered() bool {
	if len(b.Acked) < len(b.Out) {
		return false
	}
	for _, ok := range b.Acked[:len(b.Out)] {
		if !ok {
			return false
		}
	}
	return true
}

// Stage processes a batch in place. An error marked permanent with
// errclass.Permanent must not be retried; any other error may be.
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, b *Batch) error

// Process calls f.
func (f StageFunc) Process(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Chain runs stages in order and stops at the first error.
func Chain(stages ...Stage) Stage {
	return StageFunc(func(ctx context.Context, b *Batch) error {
		for _, s := range stages {
			if err := s.Process(ctx, b); err != nil {
				return err
			}
		}
		return nil
	})
}
