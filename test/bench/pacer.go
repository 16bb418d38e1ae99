package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pacing says when a constant-rate client's requests are due and how
// closely the client keeps to it.
type pacing struct {
	rate float64 // requests per second
	// poisson spaces requests with exponential gaps of the same mean:
	// arrivals from many independent visitors, rather than a metronome.
	poisson bool
	seed    uint64
	// tick is the shortest sleep of the thread that releases requests.
	// 0 releases them from a Go timer instead, which sleeps in epoll_wait
	// with millisecond resolution: every shorter wait becomes ~1.1 ms, so
	// requests leave in bursts of a millisecond's traffic, the first of
	// each up to 1 ms after its due time (wrk2's event loop has the same
	// 1 ms clock).
	tick time.Duration
}

// addFlags registers the pacing flags on fs, with rate's default.
func (p *pacing) addFlags(fs *flag.FlagSet, rate float64) {
	fs.Float64Var(&p.rate, "rate", rate, "requests per second")
	fs.BoolVar(&p.poisson, "poisson", false, "exponential gaps between due times (independent visitors) instead of even ones")
	fs.Uint64Var(&p.seed, "pace-seed", 5, "random seed of -poisson's gaps")
	fs.DurationVar(&p.tick, "tick", 50*time.Microsecond, "shortest sleep of the releasing thread (nanosleep); 0 = a Go timer (1 ms resolution: millisecond bursts)")
}

// validate reports flags no schedule can come from.
func (p pacing) validate() error {
	switch {
	case !(p.rate > 0) || math.IsInf(p.rate, 1):
		return fmt.Errorf("-rate is %v, want a positive number of requests per second", p.rate)
	case p.tick < 0:
		return fmt.Errorf("-tick is %v, want 0 (a Go timer) or more", p.tick)
	}
	return nil
}

// offsets returns the due times of n requests, in nanoseconds from the
// start.
func (p pacing) offsets(n int) []int64 {
	offs := make([]int64, n)
	interval := float64(time.Second) / p.rate
	if !p.poisson {
		for i := range offs {
			offs[i] = int64(float64(i) * interval)
		}
		return offs
	}
	r := rand.New(rand.NewPCG(p.seed, p.seed^0x9e3779b97f4a7c15))
	t := 0.0
	for i := range offs {
		offs[i] = int64(t)
		t += r.ExpFloat64() * interval
	}
	return offs
}

// release sends each request number on tickets once its due time (t0 +
// offs[i], recorded in due) has come, until all are sent or ctx is done.
// tickets must have room for all of them.
func (p pacing) release(ctx context.Context, t0 int64, offs, due []int64, tickets chan<- int) {
	sleep := sleepGo
	if p.tick > 0 {
		// A thread of its own sleeping in nanosleep wakes within tens of
		// microseconds of the time asked. The lowered timer slack (50 µs by
		// default) is this thread's alone, and the thread ends with the
		// goroutine since it is never unlocked.
		runtime.LockOSThread()
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
		sleep = sleepThread
	}
	for i := 0; i < len(offs); {
		now := time.Now().UnixNano()
		for i < len(offs) && t0+offs[i] <= now {
			due[i] = t0 + offs[i]
			tickets <- i
			i++
		}
		if i >= len(offs) || ctx.Err() != nil {
			return
		}
		// At least a tick: at 40,000 requests/s a wake-up per request would
		// cost the client's CPU more than the releases gain in evenness.
		sleep(ctx, time.Duration(max(t0+offs[i]-time.Now().UnixNano(), int64(p.tick))))
	}
}

// sleepThread sleeps d in nanosleep, on the calling thread.
func sleepThread(_ context.Context, d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil) // EINTR wakes early; the caller re-reads the clock
}

// sleepGo sleeps d on a Go timer, or until ctx is done.
func sleepGo(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// procsFor returns the GOMAXPROCS a client pacing with p needs: at least 2
// with a releasing thread, which holds its processor while it sleeps in
// nanosleep. With one processor nothing would poll the network until the
// runtime's monitor took the processor back, up to 10 ms later; pinned to
// one CPU, the two processors' threads share it.
func (p pacing) procsFor(current int) int {
	if p.tick > 0 {
		return max(current, 2)
	}
	return current
}
