// Package produce is the pipeline stage that writes a batch's output records
// to Kafka and marks each acknowledged one, so a retry resends only what
// failed, and a record the broker refuses for good becomes a dead letter
// instead of blocking the partition forever.
package produce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/pixelstream/pixelstream/services/enricher/internal/deadletter"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Writer is the part of *kafkawriter.Writer the stage uses.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// errPending says some records still wait to be sent (retryable).
var errPending = errors.New("records pending after partial write")

// Stage writes Batch.Out. The writer must require acknowledgement by every
// in-sync replica (kafkawriter's default): an acknowledgement must mean the
// record is replicated before the offset behind it is committed.
type Stage struct {
	W               Writer
	DeadletterTopic string
	// MaxRecordBytes is the writer's BatchBytes: larger records are dead
	// lettered before the write instead of failing the whole call. The
	// stage's size estimate is never below the writer's, so every record
	// it lets through the writer accepts.
	MaxRecordBytes int
	Log            *zap.Logger
	// Dropped counts records lost for good: a dead letter the broker refused.
	Dropped prometheus.Counter
	// Deadlettered counts records turned into dead letters here.
	Deadlettered prometheus.Counter
	Now          func() time.Time

	// Scratch of Process, which one goroutine calls at a time.
	pending, send []int
	msgs          []kafka.Message
}

func size(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value) + 64
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// Process sends every pending record once. It returns nil when all are
// acknowledged, a retryable error otherwise.
func (s *Stage) Process(ctx context.Context, b *pipeline.Batch) error {
	for len(b.Acked) < len(b.Out) {
		b.Acked = append(b.Acked, false)
	}
	// The scratch slices are reused across batches (a batch's worth of
	// kafka.Message was 10 % of the enricher's allocated bytes).
	s.pending = b.AppendPending(s.pending[:0])
	if len(s.pending) == 0 {
		return nil
	}
	msgs, send := s.msgs[:0], s.send[:0]
	defer func() {
		clear(msgs) // drop references to the batch's arena
		s.msgs, s.send = msgs[:0], send[:0]
	}()
	for _, i := range s.pending {
		if b.Out[i].Topic == "" { // withheld on purpose by an earlier stage
			b.Acked[i] = true
			continue
		}
		if s.MaxRecordBytes > 0 && size(&b.Out[i]) > s.MaxRecordBytes {
			s.reject(b, i, kafka.MessageSizeTooLarge)
			if b.Acked[i] {
				continue
			}
		}
		msgs = append(msgs, b.Out[i])
		send = append(send, i)
	}
	if len(msgs) == 0 {
		return nil
	}
	err := s.W.WriteMessages(ctx, msgs...)
	if err == nil {
		for _, i := range send {
			b.Acked[i] = true
		}
		return nil
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(send) {
		if len(send) == 1 && errclass.IsPermanent(err) {
			s.reject(b, send[0], err)
			return errPending
		}
		return fmt.Errorf("produce %d records: %w", len(send), err)
	}
	var last error
	for j, e := range werrs {
		i := send[j]
		switch {
		case e == nil:
			b.Acked[i] = true
		case errclass.IsPermanent(e):
			s.reject(b, i, e)
			last = errPending
		default:
			last = e
		}
	}
	if last == nil {
		for _, i := range send {
			if !b.Acked[i] {
				return errPending
			}
		}
		return nil
	}
	return fmt.Errorf("produce: %d of %d records failed: %w", len(b.Pending()), len(b.Out), last)
}

// reject replaces Out[i] by the dead letter of its input; if Out[i] already
// was a dead letter the record is given up on, counted and logged.
func (s *Stage) reject(b *pipeline.Batch, i int, cause error) {
	if b.Out[i].Topic == s.DeadletterTopic {
		b.Acked[i] = true
		s.Dropped.Inc()
		s.Log.Error("dead letter refused by the broker: record dropped",
			zap.String("source_topic", b.In[i].Topic), zap.Int("partition", b.In[i].Partition),
			zap.Int64("offset", b.In[i].Offset), zap.Error(cause))
		return
	}
	s.Deadlettered.Inc()
	s.Log.Warn("broker refused an enriched record: sending it to the dead-letter topic",
		zap.Int("partition", b.In[i].Partition), zap.Int64("offset", b.In[i].Offset), zap.Error(cause))
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b.Out[i] = deadletter.New(b.In[i], s.DeadletterTopic, deadletter.ReasonRejected, cause.Error(), now())
}
