package main

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestPacingOffsets(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name    string
		p       pacing
		wantCV  float64 // coefficient of variation of the gaps
		cvSlack float64
	}{
		{"even", pacing{rate: 40_000}, 0, 0.001},
		{"poisson", pacing{rate: 40_000, poisson: true, seed: 5}, 1, 0.02},
		{"poisson, low rate", pacing{rate: 50, poisson: true, seed: 9}, 1, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offs := tc.p.offsets(n)
			if len(offs) != n || offs[0] != 0 {
				t.Fatalf("len %d, first %d: want %d offsets from 0", len(offs), offs[0], n)
			}
			var sum, sq float64
			for i := 1; i < n; i++ {
				g := float64(offs[i] - offs[i-1])
				if g < 0 {
					t.Fatalf("offset %d (%d) before offset %d (%d)", i, offs[i], i-1, offs[i-1])
				}
				sum += g
				sq += g * g
			}
			mean := sum / (n - 1)
			interval := float64(time.Second) / tc.p.rate
			if math.Abs(mean/interval-1) > 0.01 {
				t.Errorf("mean gap %.0f ns, want %.0f (the rate asked)", mean, interval)
			}
			cv := math.Sqrt(max(sq/(n-1)-mean*mean, 0)) / mean
			if math.Abs(cv-tc.wantCV) > tc.cvSlack {
				t.Errorf("gaps' coefficient of variation %.3f, want %.3f", cv, tc.wantCV)
			}
		})
	}
	a, b := pacing{rate: 1000, poisson: true, seed: 1}.offsets(100), pacing{rate: 1000, poisson: true, seed: 2}.offsets(100)
	if a[99] == b[99] {
		t.Error("two seeds gave the same schedule")
	}
}

func TestPacingRelease(t *testing.T) {
	for _, tick := range []time.Duration{0, 50 * time.Microsecond} {
		t.Run(tick.String(), func(t *testing.T) {
			p := pacing{rate: 20_000, poisson: true, seed: 3, tick: tick}
			offs := p.offsets(4000) // ~0.2 s
			due := make([]int64, len(offs))
			tickets := make(chan int, len(offs))
			got := make([]int64, len(offs)) // when each ticket was received
			t0 := time.Now().UnixNano()
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer close(tickets)
				p.release(context.Background(), t0, offs, due, tickets)
			}()
			next := 0
			for i := range tickets {
				got[i] = time.Now().UnixNano()
				if i != next {
					t.Fatalf("ticket %d released after %d: want them in order", i, next-1)
				}
				next++
			}
			<-done
			if next != len(offs) {
				t.Fatalf("%d of %d tickets released", next, len(offs))
			}
			for i := range offs {
				if due[i] != t0+offs[i] {
					t.Fatalf("due[%d] = %d, want t0 + offset = %d", i, due[i], t0+offs[i])
				}
				if got[i] < due[i] {
					t.Fatalf("ticket %d received %d ns before its due time", i, due[i]-got[i])
				}
			}
		})
	}
}

func TestPacingReleaseStopsOnCancel(t *testing.T) {
	p := pacing{rate: 10, tick: 50 * time.Microsecond} // one request every 100 ms
	offs := p.offsets(100)                             // ~10 s if not stopped
	tickets := make(chan int, len(offs))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.release(ctx, time.Now().UnixNano(), offs, make([]int64, len(offs)), tickets)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("release went on after its context was done")
	}
	if n := len(tickets); n == 0 || n >= len(offs) {
		t.Errorf("%d tickets released before the cancel, want some and not all", n)
	}
}

func TestPacingProcsFor(t *testing.T) {
	for _, tc := range []struct {
		tick          time.Duration
		current, want int
	}{
		{0, 1, 1},
		{0, 4, 4},
		{50 * time.Microsecond, 1, 2},
		{50 * time.Microsecond, 2, 2},
		{50 * time.Microsecond, 8, 8},
	} {
		if got := (pacing{tick: tc.tick}).procsFor(tc.current); got != tc.want {
			t.Errorf("tick %v, GOMAXPROCS %d: procsFor = %d, want %d", tc.tick, tc.current, got, tc.want)
		}
	}
}

func TestPacingValidate(t *testing.T) {
	for _, tc := range []struct {
		p  pacing
		ok bool
	}{
		{pacing{rate: 5000, tick: 50 * time.Microsecond}, true},
		{pacing{rate: 0.5}, true},
		{pacing{rate: 0}, false},
		{pacing{rate: -1}, false},
		{pacing{rate: math.NaN()}, false},
		{pacing{rate: math.Inf(1)}, false},
		{pacing{rate: 5000, tick: -time.Microsecond}, false},
	} {
		if err := tc.p.validate(); (err == nil) != tc.ok {
			t.Errorf("validate(%+v) = %v, want ok %v", tc.p, err, tc.ok)
		}
	}
}
