package pipeline

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/pixelstream/pixelstream/pkg/errclass"
)

// Backoff is an exponential backoff policy with full jitter.
type Backoff struct {
	Initial time.Duration // first wait
	Max     time.Duration // cap on any wait
	// MaxAttempts bounds attempts; 0 retries until the context ends, which
	// is right for stages that must not give up (a record that is never
	// produced must never be committed past).
	MaxAttempts int
}

// Delay returns the wait before retry number attempt (1-based).
func (p Backoff) Delay(attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// WithRetry retries s while it fails with a retryable error, waiting per
// policy between attempts. onRetry (may be nil) is told of each failure
// that will be retried. A permanent error, the context ending, or running
// out of attempts returns the last error.
func WithRetry(s Stage, policy Backoff, onRetry func(err error, attempt int, wait time.Duration)) Stage {
	return StageFunc(func(ctx context.Context, b *Batch) error {
		for attempt := 1; ; attempt++ {
			err := s.Process(ctx, b)
			if err == nil || errclass.IsPermanent(err) {
				return err
			}
			if policy.MaxAttempts > 0 && attempt >= policy.MaxAttempts {
				return err
			}
			wait := policy.Delay(attempt)
			if onRetry != nil {
				onRetry(err, attempt, wait)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	})
}
