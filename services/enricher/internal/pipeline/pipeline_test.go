package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

func TestChainStopsAtFirstError(t *testing.T) {
	var ran []string
	step := func(name string, err error) Stage {
		return StageFunc(func(context.Context, *Batch) error { ran = append(ran, name); return err })
	}
	boom := errors.New("boom")
	err := Chain(step("a", nil), step("b", boom), step("c", nil)).Process(context.Background(), &Batch{})
	if !errors.Is(err, boom) || len(ran) != 2 {
		t.Fatalf("err=%v ran=%v", err, ran)
	}
}

func TestWithRetry(t *testing.T) {
	fast := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	tests := []struct {
		name      string
		policy    Backoff
		failures  int
		permanent bool
		wantCalls int
		wantErr   bool
	}{
		{"succeeds first", fast, 0, false, 1, false},
		{"retries transient", fast, 3, false, 4, false},
		{"permanent not retried", fast, 5, true, 1, true},
		{"gives up after max", Backoff{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}, 10, false, 3, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, retries := 0, 0
			s := StageFunc(func(context.Context, *Batch) error {
				calls++
				if calls <= tc.failures {
					if tc.permanent {
						return errclass.Permanent(errors.New("bad"))
					}
					return errors.New("transient")
				}
				return nil
			})
			err := WithRetry(s, tc.policy, func(error, int, time.Duration) { retries++ }).Process(context.Background(), &Batch{})
			if (err != nil) != tc.wantErr || calls != tc.wantCalls {
				t.Fatalf("err=%v calls=%d, want err=%v calls=%d", err, calls, tc.wantErr, tc.wantCalls)
			}
			if !tc.wantErr && retries != tc.failures {
				t.Fatalf("onRetry called %d times, want %d", retries, tc.failures)
			}
		})
	}
}

func TestWithRetryStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	s := StageFunc(func(context.Context, *Batch) error { return errors.New("down") })
	start := time.Now()
	err := WithRetry(s, Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond}, nil).Process(ctx, &Batch{})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err=%v after %v", err, time.Since(start))
	}
}

func TestBackoffDelayBounded(t *testing.T) {
	p := Backoff{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt := 1; attempt < 20; attempt++ {
		if d := p.Delay(attempt); d < 0 || d > p.Max {
			t.Fatalf("attempt %d: %v", attempt, d)
		}
	}
}

func TestWithMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewStageMetrics(reg)
	fail := true
	s := WithMetrics(StageFunc(func(context.Context, *Batch) error {
		if fail {
			return errclass.Permanent(errors.New("x"))
		}
		return nil
	}), "produce", m)
	b := &Batch{In: make([]kafka.Message, 5)}
	_ = s.Process(context.Background(), b)
	fail = false
	_ = s.Process(context.Background(), b)
	if got := testutil.ToFloat64(m.Errors.WithLabelValues("produce", "permanent")); got != 1 {
		t.Fatalf("errors = %v", got)
	}
	if got := testutil.ToFloat64(m.Records.WithLabelValues("produce")); got != 5 {
		t.Fatalf("records = %v", got)
	}
}

func TestPending(t *testing.T) {
	b := &Batch{Out: make([]kafka.Message, 4), Acked: []bool{true, false, true}}
	if got := b.Pending(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("pending = %v", got)
	}
}

func TestDelivered(t *testing.T) {
	tests := []struct {
		out   int
		acked []bool
		want  bool
	}{
		{0, nil, true},
		{2, []bool{true, true}, true},
		{2, []bool{true}, false},              // the second never sent
		{2, []bool{true, false}, false},       // the second refused
		{1, []bool{true, false, false}, true}, // Acked longer than Out
	}
	for _, tt := range tests {
		b := &Batch{Out: make([]kafka.Message, tt.out), Acked: tt.acked}
		if got := b.Delivered(); got != tt.want {
			t.Errorf("Out %d Acked %v: Delivered() = %v, want %v", tt.out, tt.acked, got, tt.want)
		}
	}
}

func TestObserveAge(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := NewEventAge(reg)
	now := time.Now()
	b := &Batch{In: []kafka.Message{{Time: now.Add(-2 * time.Second)}, {Time: now.Add(-20 * time.Millisecond)}, {}}}
	if err := ObserveAge(h, "fetched").Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	hist := mfs[0].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 2 {
		t.Fatalf("%d samples, want 2 (the record without a timestamp skipped)", hist.GetSampleCount())
	}
	if s := hist.GetSampleSum(); s < 2.02 || s > 2.5 {
		t.Fatalf("sum of ages %v s, want about 2.02", s)
	}
}
