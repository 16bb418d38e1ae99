// Package commit is the last pipeline stage: it commits the offsets of a
// batch's input records, and refuses to when any output record is still
// unacknowledged, because committing past a record that was never produced
// loses it (the data-loss bug of Jaeger's RFC 0007).
package commit

import (
	"context"
	"fmt"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// Committer is the part of the group consumer (internal/consumer) the stage
// uses.
type Committer interface {
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Stage commits Batch.In once every record of Batch.Out is acknowledged.
type Stage struct {
	C Committer
}

// Process commits the batch's offsets (kafka-go commits the highest offset
// per partition). A batch with unacknowledged output is a programming
// error and fails permanently rather than committing.
func (s Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	if len(b.In) == 0 {
		return nil
	}
	if !b.Delivered() {
		return errclass.Permanent(fmt.Errorf("commit refused: %d output records not acknowledged", len(b.Pending())))
	}
	if err := s.C.CommitMessages(ctx, b.In...); err != nil {
		return fmt.Errorf("commit %d offsets: %w", len(b.In), err)
	}
	return nil
}
