package produce

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/deadletter"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// scripted fails each call per its script: a whole-call error, or
// per-message errors keyed by the message value.
type scripted struct {
	calls   [][]kafka.Message
	script  []func(msgs []kafka.Message) error
	written []string
}

func (s *scripted) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	s.calls = append(s.calls, msgs)
	var err error
	if n := len(s.calls) - 1; n < len(s.script) {
		err = s.script[n](msgs)
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for i, m := range msgs {
			if werrs[i] == nil {
				s.written = append(s.written, string(m.Value))
			}
		}
	} else if err == nil {
		for _, m := range msgs {
			s.written = append(s.written, string(m.Value))
		}
	}
	return err
}

func failValues(errFor map[string]error) func([]kafka.Message) error {
	return func(msgs []kafka.Message) error {
		werrs := make(kafka.WriteErrors, len(msgs))
		for i, m := range msgs {
			werrs[i] = errFor[string(m.Value)]
		}
		return werrs
	}
}

func batch(values ...string) *pipeline.Batch {
	b := &pipeline.Batch{}
	for i, v := range values {
		b.In = append(b.In, kafka.Message{Topic: "hits.raw", Offset: int64(i), Value: []byte("raw-" + v)})
		b.Out = append(b.Out, kafka.Message{Topic: "pageviews.enriched", Value: []byte(v)})
	}
	return b
}

func stage(w Writer) (*Stage, prometheus.Counter, prometheus.Counter) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})
	dl := prometheus.NewCounter(prometheus.CounterOpts{Name: "dl"})
	return &Stage{W: w, DeadletterTopic: "hits.deadletter", MaxRecordBytes: 1000, Log: zap.NewNop(),
		Dropped: dropped, Deadlettered: dl}, dropped, dl
}

func TestPartialFailureResendsOnlyFailed(t *testing.T) {
	w := &scripted{script: []func([]kafka.Message) error{
		failValues(map[string]error{"b": kafka.NotLeaderForPartition, "c": kafka.LeaderNotAvailable}),
	}}
	s, _, _ := stage(w)
	b := batch("a", "b", "c", "d")
	if err := s.Process(context.Background(), b); err == nil {
		t.Fatal("partial failure reported as success")
	}
	if len(b.Pending()) != 2 {
		t.Fatalf("pending %v", b.Pending())
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(w.written, ","); got != "a,d,b,c" {
		t.Fatalf("written %s: want each record exactly once", got)
	}
	if len(w.calls[1]) != 2 {
		t.Fatalf("retry sent %d records, want 2", len(w.calls[1]))
	}
}

func TestPermanentRejectionBecomesDeadLetter(t *testing.T) {
	w := &scripted{script: []func([]kafka.Message) error{
		failValues(map[string]error{"b": kafka.InvalidRecord}),
	}}
	s, dropped, dl := stage(w)
	b := batch("a", "b")
	err := s.Process(context.Background(), b)
	if err == nil {
		t.Fatal("want retry to send the dead letter")
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Out[1].Topic != "hits.deadletter" || string(b.Out[1].Value) != "raw-b" ||
		deadletter.Header(b.Out[1], deadletter.HeaderClass) != deadletter.ReasonRejected {
		t.Fatalf("not dead-lettered: %+v", b.Out[1])
	}
	if testutil.ToFloat64(dl) != 1 || testutil.ToFloat64(dropped) != 0 {
		t.Fatal("counters wrong")
	}
	if len(b.Pending()) != 0 {
		t.Fatal("records left pending")
	}
}

func TestRefusedDeadLetterIsCountedDrop(t *testing.T) {
	w := &scripted{script: []func([]kafka.Message) error{
		failValues(map[string]error{"b": kafka.InvalidRecord}),
		failValues(map[string]error{"raw-b": kafka.InvalidRecord}),
	}}
	s, dropped, _ := stage(w)
	b := batch("a", "b")
	_ = s.Process(context.Background(), b)
	_ = s.Process(context.Background(), b)
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(dropped) != 1 {
		t.Fatal("a refused dead letter must be a counted drop")
	}
}

func TestOversizeRecordDeadLetteredBeforeWrite(t *testing.T) {
	w := &scripted{}
	s, _, dl := stage(w)
	b := batch("small", strings.Repeat("x", 2000))
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Out[1].Topic != "hits.deadletter" || testutil.ToFloat64(dl) != 1 {
		t.Fatalf("oversize record not dead-lettered: %s", b.Out[1].Topic)
	}
}

func TestWholeCallFailureIsRetryable(t *testing.T) {
	w := &scripted{script: []func([]kafka.Message) error{
		func([]kafka.Message) error { return context.DeadlineExceeded },
	}}
	s, _, _ := stage(w)
	b := batch("a", "b")
	if err := s.Process(context.Background(), b); err == nil || len(b.Pending()) != 2 {
		t.Fatalf("err=%v pending=%v", err, b.Pending())
	}
	if err := s.Process(context.Background(), b); err != nil || len(b.Pending()) != 0 {
		t.Fatalf("err=%v pending=%v", err, b.Pending())
	}
}

func TestWithheldRecordsAreNotSent(t *testing.T) {
	w := &scripted{}
	s, _, _ := stage(w)
	b := batch("a", "b")
	b.Out[0] = kafka.Message{}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if strings.Join(w.written, ",") != "b" || len(b.Pending()) != 0 {
		t.Fatalf("written %v pending %v", w.written, b.Pending())
	}
}
