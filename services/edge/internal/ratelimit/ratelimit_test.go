package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	sec := int64(time.Second)
	tests := []struct {
		name  string
		rate  float64
		burst int
		// at[i] is the time of request i in seconds; want[i] whether it
		// is allowed.
		at   []float64
		want []bool
	}{
		{"burst then refused", 10, 3, []float64{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refills at the rate", 10, 1, []float64{0, 0.05, 0.1, 0.15, 0.2}, []bool{true, false, true, false, true}},
		{"idle refills to the burst, not beyond", 1, 2, []float64{0, 0, 100, 100, 100}, []bool{true, true, true, true, false}},
		{"default burst is the rate", 5, 0, []float64{0, 0, 0, 0, 0, 0}, []bool{true, true, true, true, true, false}},
		{"fractional rate", 0.5, 1, []float64{0, 1, 2.01}, []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.rate, tt.burst)
			var b Bucket
			for i, at := range tt.at {
				if got := l.allowAt(&b, int64(at*float64(sec))+sec); got != tt.want[i] {
					t.Errorf("request %d at %vs: allowed %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
}

func TestNilLimiterAllows(t *testing.T) {
	if New(0, 10) != nil || New(-1, 1) != nil {
		t.Fatal("a non-positive rate must mean no limit")
	}
	var l *Limiter
	if !l.Allow(&Bucket{}) {
		t.Fatal("nil limiter refused")
	}
}

// TestConcurrentBurst: under contention exactly the burst gets through.
func TestConcurrentBurst(t *testing.T) {
	l := New(0.001, 100) // no refill during the test
	var b Bucket
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if l.Allow(&b) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("%d allowed, want the burst of 100", allowed.Load())
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := New(1e6, 10)
	var b Bucket
	if n := testing.AllocsPerRun(1000, func() { l.Allow(&b) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(1e9, 1000)
	var bk Bucket
	for b.Loop() {
		l.Allow(&bk)
	}
}
