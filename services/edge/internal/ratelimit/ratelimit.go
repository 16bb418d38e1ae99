// Package ratelimit is a lock-free token bucket for the request path: one
// atomic word per bucket, no allocation, no lock.
//
// It is the generic cell rate algorithm (GCRA), which behaves exactly like
// a token bucket of Burst tokens refilled at Rate per second: a bucket
// stores the theoretical arrival time (TAT) of the next request; a request
// at time now is allowed if TAT - now, after adding one interval, is at
// most Burst intervals, and then moves TAT one interval on. Time is the
// process's monotonic clock, so wall-clock steps cannot lock a key out.
package ratelimit

import (
	"math"
	"sync/atomic"
	"time"
)

// Bucket is one key's state. The zero value is a full bucket.
type Bucket struct{ tat atomic.Int64 }

// Limiter holds the rate and burst shared by all buckets. A nil Limiter
// allows everything.
type Limiter struct {
	interval  int64 // nanoseconds per token
	tolerance int64 // burst × interval
	base      time.Time
}

// New returns a Limiter of rate tokens per second with room for burst at
// once, or nil (no limit) when rate is not positive. A burst below 1 is the
// rate rounded up, at least 1.
func New(rate float64, burst int) *Limiter {
	if !(rate > 0) {
		return nil
	}
	if burst < 1 {
		burst = int(max(1, math.Ceil(rate)))
	}
	interval := int64(math.Max(1, math.Round(float64(time.Second)/rate)))
	return &Limiter{interval: interval, tolerance: int64(burst) * interval, base: time.Now()}
}

// Allow takes one token from b if it has one.
func (l *Limiter) Allow(b *Bucket) bool {
	if l == nil {
		return true
	}
	return l.allowAt(b, int64(time.Since(l.base)))
}

func (l *Limiter) allowAt(b *Bucket, now int64) bool {
	for {
		old := b.tat.Load()
		tat := max(old, now)
		next := tat + l.interval
		if next-now > l.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}

// CopyFrom gives b the state of other (a key kept across a reload keeps
// its tokens).
func (b *Bucket) CopyFrom(other *Bucket) { b.tat.Store(other.tat.Load()) }
