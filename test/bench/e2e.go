package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cmdE2E measures end-to-end latency: hits of the realistic mix, each with
// a unique marker in its page URL (…/lat/<run>/<n>), are sent to the edge
// at a fixed rate; a consumer of the enriched topic (franz-go, an
// independent client) notes when each marked record becomes readable. The
// latency of hit n is read time − the time its pixel response arrived.
func cmdE2E(args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	target := fs.String("url", "http://127.0.0.1:18080", "edge base URL")
	brokers := fs.String("brokers", "127.0.0.1:19392", "Kafka brokers")
	topic := fs.String("topic", "bench.e2e.enriched", "enriched topic")
	var pace pacing
	pace.addFlags(fs, 5000)
	dur := fs.Duration("duration", 15*time.Second, "sending time")
	conns := fs.Int("conns", 32, "keep-alive connections")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for the last records after sending")
	seed := fs.Uint64("seed", 4, "random seed")
	cpuOf := fs.String("cpu-of", "", "name=pid,…: the cores each process used while sending are reported (e2e_<name>_cores)")
	_ = fs.Parse(args)
	if err := pace.validate(); err != nil {
		return err
	}
	procs, err := parseNamedPids(*cpuOf)
	if err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil {
		return err
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	n := int(pace.rate * dur.Seconds())
	reqs := buildRequests(n, *seed, u.Host, false, run)
	needle := []byte("/lat/" + run + "/")

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-time.Second).UnixMilli())),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	read := make([]atomic.Int64, n+1)
	var matched atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *dur+*wait+20*time.Second)
	defer cancel()
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for ctx.Err() == nil && matched.Load() < int64(n) {
			pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fetches := cl.PollFetches(pctx)
			pcancel()
			now := time.Now().UnixNano()
			fetches.EachRecord(func(r *kgo.Record) {
				if k, ok := markerIndex(r.Value, needle); ok && k >= 1 && k <= n {
					if read[k].CompareAndSwap(0, now) {
						matched.Add(1)
					}
				}
			})
		}
	}()
	// Let the consumer join and resolve its offsets before the first hit.
	time.Sleep(1500 * time.Millisecond)

	idle0, steal0, _ := machineTimes()
	cpu0 := procs.cpu()
	sendStart := time.Now()
	res := runConstantRate(ctx, u.Host, reqs, pace, *conns, nil)
	sendEnd := time.Now()
	idle1, steal1, _ := machineTimes()
	cpu1 := procs.cpu()
	for time.Since(sendEnd) < *wait && matched.Load() < int64(n) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-consumerDone

	var e2e, httpLat []int64
	// Latencies by the second the hit was answered in: whether the slow
	// tail is spread evenly or comes from a few stalled seconds (a broker
	// collection, a noisy neighbour) changes what to fix.
	perSecond := map[int64][]int64{}
	okResp, missing := 0, 0
	for i := range n {
		if res.end[i] == 0 || res.status[i] != 200 {
			continue
		}
		okResp++
		httpLat = append(httpLat, res.end[i]-res.due[i])
		r := read[i+1].Load() // marker numbers start at 1
		if r == 0 {
			missing++
			continue
		}
		e2e = append(e2e, r-res.end[i])
		sec := (res.end[i] - res.started.UnixNano()) / 1e9
		perSecond[sec] = append(perSecond[sec], r-res.end[i])
	}
	el := float64(res.finished.Sub(res.started)) / 1e9
	p := percentiles(e2e, 50, 90, 99, 100)
	h := percentiles(httpLat, 50, 99)
	fmt.Printf("e2e_target_rps=%.0f e2e_achieved_rps=%.0f e2e_sent=%d e2e_ok=%d e2e_matched=%d e2e_missing=%d\n",
		pace.rate, float64(okResp)/el, n, okResp, len(e2e), missing)
	// Steal: CPU time the hypervisor gave to other guests while sending,
	// which stalls every process here at once (latency spikes no code
	// path explains).
	sendSec := sendEnd.Sub(sendStart).Seconds()
	fmt.Printf("e2e_steal_cores=%.2f e2e_idle_cores=%.2f\n", (steal1-steal0)/sendSec, (idle1-idle0)/sendSec)
	// Who used the CPU while sending: at 5,000 hits/s the broker's
	// round trips set the latency, and they slow down with its CPU.
	for i, pr := range procs {
		fmt.Printf("e2e_%s_cores=%.2f\n", pr.name, (cpu1[i]-cpu0[i])/sendSec)
	}
	var secP99 []float64
	for _, v := range perSecond {
		secP99 = append(secP99, percentiles(v, 99)[0])
	}
	slices.Sort(secP99)
	over := 0
	for _, v := range secP99 {
		if v >= 100 {
			over++
		}
	}
	if len(secP99) > 0 {
		fmt.Printf("e2e_seconds=%d e2e_seconds_p99_over_100ms=%d e2e_second_p99_median_ms=%.1f e2e_second_p99_worst_ms=%.1f\n",
			len(secP99), over, secP99[len(secP99)/2], secP99[len(secP99)-1])
	}
	fmt.Printf("e2e_p50_ms=%.1f e2e_p90_ms=%.1f e2e_p99_ms=%.1f e2e_max_ms=%.1f e2e_http_p50_ms=%.3f e2e_http_p99_ms=%.3f\n",
		p[0], p[1], p[2], p[3], h[0], h[1])
	return nil
}
