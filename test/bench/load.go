package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// requestBytes formats h as the HTTP/1.1 request a browser behind a
// trusted proxy sends: the same headers scripts/bench/realistic.lua sends.
func requestBytes(h *Hit, host string, closeConn bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s?%s HTTP/1.1\r\nHost: %s\r\n", pixelPath, h.Query, host)
	fmt.Fprintf(&b, "User-Agent: %s\r\n", h.UA)
	b.WriteString("Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n")
	fmt.Fprintf(&b, "Accept-Language: %s\r\n", h.AcceptLanguage)
	if h.Referer != "" {
		fmt.Fprintf(&b, "Referer: %s\r\n", h.Referer)
	}
	b.WriteString("Sec-Fetch-Dest: image\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: cross-site\r\n")
	if h.CHUA != "" {
		fmt.Fprintf(&b, "Sec-CH-UA: %s\r\nSec-CH-UA-Mobile: %s\r\nSec-CH-UA-Platform: %s\r\n", h.CHUA, h.CHMobile, h.CHPlatform)
	}
	if h.DNT {
		b.WriteString("DNT: 1\r\n")
	}
	fmt.Fprintf(&b, "X-Forwarded-For: %s\r\n", h.IP)
	if closeConn {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// httpConn is a minimal HTTP/1.1 client connection: write a prebuilt
// request, read the status and discard the body. It avoids a client
// library's per-request work so the load generator stays cheap.
type httpConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func (h *httpConn) do(req []byte, timeout time.Duration) (status int, err error) {
	if h.c == nil {
		c, err := net.DialTimeout("tcp", h.addr, timeout)
		if err != nil {
			return 0, err
		}
		h.c = c
		if h.br == nil {
			h.br = bufio.NewReaderSize(c, 4096)
		} else {
			h.br.Reset(c)
		}
	}
	_ = h.c.SetDeadline(time.Now().Add(timeout))
	if _, err := h.c.Write(req); err != nil {
		h.close()
		return 0, err
	}
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		h.close()
		return 0, err
	}
	if len(line) < 12 {
		h.close()
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, _ = strconv.Atoi(string(line[9:12]))
	length, closing := 0, false
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			h.close()
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok {
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				length, _ = strconv.Atoi(string(v))
			case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
				closing = true
			}
		}
	}
	if _, err := h.br.Discard(length); err != nil {
		h.close()
		return 0, err
	}
	if closing {
		h.close()
	}
	return status, nil
}

func (h *httpConn) close() {
	if h.c != nil {
		_ = h.c.Close()
		h.c = nil
	}
}

// loadResult holds per-request timings, indexed by request number.
type loadResult struct {
	due, end []int64 // intended send time and response time (unix ns); end 0 = failed
	// sent is when a connection took the request to send it (unix ns):
	// sent - due is the client's own queue (every connection busy, or the
	// client short of CPU), end - sent the server's answer.
	sent     []int64
	status   []int16
	started  time.Time
	finished time.Time
}

// runConstantRate sends len(reqs) requests at the times p sets over conns
// keep-alive connections (or a new connection per request with
// closeConn). Latency is measured from the time a request was due, not
// from when a connection was free to send it, so a server that falls
// behind shows its queueing delay (no coordinated omission, as wrk2).
func runConstantRate(ctx context.Context, addr string, reqs [][]byte, p pacing, conns int, onResponse func(i int, end int64)) *loadResult {
	n := len(reqs)
	res := &loadResult{due: make([]int64, n), end: make([]int64, n), sent: make([]int64, n), status: make([]int16, n)}
	offs := p.offsets(n)
	if procs := p.procsFor(runtime.GOMAXPROCS(0)); procs != runtime.GOMAXPROCS(0) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	tickets := make(chan int, n)
	res.started = time.Now()
	go func() {
		defer close(tickets)
		p.release(ctx, res.started.UnixNano(), offs, res.due, tickets)
	}()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &httpConn{addr: addr}
			defer c.close()
			for i := range tickets {
				if ctx.Err() != nil {
					continue
				}
				res.sent[i] = time.Now().UnixNano()
				st, err := c.do(reqs[i], 5*time.Second)
				if err != nil {
					continue
				}
				end := time.Now().UnixNano()
				res.end[i], res.status[i] = end, int16(st)
				if onResponse != nil {
					onResponse(i, end)
				}
			}
		}()
	}
	wg.Wait()
	res.finished = time.Now()
	return res
}

func percentiles(v []int64, ps ...float64) []float64 {
	if len(v) == 0 {
		return make([]float64, len(ps))
	}
	s := slices.Clone(v)
	slices.Sort(s)
	out := make([]float64, len(ps))
	for i, p := range ps {
		k := int(p / 100 * float64(len(s)-1))
		out[i] = float64(s[k]) / 1e6 // ms
	}
	return out
}

func buildRequests(n int, seed uint64, host string, closeConn bool, marker string) [][]byte {
	m := NewMix(DefaultMix(seed))
	if marker != "" {
		m.SetMarker(marker)
	}
	reqs := make([][]byte, n)
	var h Hit
	for i := range reqs {
		m.Next(&h)
		reqs[i] = requestBytes(&h, host, closeConn)
	}
	return reqs
}

// cmdRate is the constant-rate client (wrk2 is not packaged in Debian):
// p50/p99 at a fixed request rate.
func cmdRate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	target := fs.String("url", "http://127.0.0.1:18080", "edge base URL")
	var pace pacing
	pace.addFlags(fs, 5000)
	dur := fs.Duration("duration", 10*time.Second, "sending time")
	conns := fs.Int("conns", 64, "connections")
	closeConn := fs.Bool("close", false, "a new connection per request")
	distinct := fs.Int("distinct", 50000, "distinct requests, cycled")
	seed := fs.Uint64("seed", 3, "random seed")
	label := fs.String("label", "rate", "prefix of the printed keys")
	timeline := fs.Duration("timeline", 0, "also print the worst latency of every window of this length (to find stalls)")
	watch := fs.String("watch", "", "with -timeline, also print each window's cores of these processes (name=pid,…) and each CPU's busy share, to tell a stalled server from a stalled client")
	_ = fs.Parse(args)
	if err := pace.validate(); err != nil {
		return err
	}
	watched, err := parseNamedPids(*watch)
	if err != nil {
		return fmt.Errorf("-watch: %w", err)
	}
	u, err := url.Parse(*target)
	if err != nil {
		return err
	}
	n := int(pace.rate * dur.Seconds())
	base := buildRequests(min(*distinct, n), *seed, u.Host, *closeConn, "")
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = base[i%len(base)]
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur+15*time.Second)
	defer cancel()
	var cpu *cpuSampler
	if *timeline > 0 {
		cpu = startCPUSampler(*timeline, watched)
	}
	res := runConstantRate(ctx, u.Host, reqs, pace, *conns, nil)
	var samples []cpuSample
	if cpu != nil {
		samples = cpu.stop()
	}
	var lat, wait []int64
	bad, failed := 0, 0
	var last int64
	for i := range reqs {
		switch {
		case res.end[i] == 0:
			failed++
		case res.status[i] != 200:
			bad++
		default:
			lat = append(lat, res.end[i]-res.due[i])
			wait = append(wait, res.sent[i]-res.due[i])
		}
		last = max(last, res.end[i])
	}
	el := float64(last-res.started.UnixNano()) / 1e9
	p := percentiles(lat, 50, 90, 99, 99.9, 100)
	fmt.Printf("%s_target_rps=%.0f %s_achieved_rps=%.0f %s_sent=%d %s_ok=%d %s_non200=%d %s_failed=%d\n",
		*label, pace.rate, *label, float64(len(lat)+bad)/el, *label, n, *label, len(lat), *label, bad, *label, failed)
	fmt.Printf("%s_p50_ms=%.3f %s_p90_ms=%.3f %s_p99_ms=%.3f %s_p999_ms=%.3f %s_max_ms=%.3f\n",
		*label, p[0], *label, p[1], *label, p[2], *label, p[3], *label, p[4])
	// The client's own share of those: from the due time until a
	// connection took the request (releasing late, or every connection
	// busy).
	w := percentiles(wait, 50, 99)
	fmt.Printf("%s_wait_p50_ms=%.3f %s_wait_p99_ms=%.3f\n", *label, w[0], *label, w[1])
	if *timeline > 0 {
		printTimeline(res, *timeline, samples, watched)
	}
	if failed > 0 && len(lat) == 0 {
		return errors.New("every request failed")
	}
	return nil
}

// lat marker search helpers
func markerIndex(v []byte, needle []byte) (int, bool) {
	i := bytes.Index(v, needle)
	if i < 0 {
		return 0, false
	}
	j := i + len(needle)
	k := j
	for k < len(v) && v[k] >= '0' && v[k] <= '9' {
		k++
	}
	n, err := strconv.Atoi(string(v[j:k]))
	return n, err == nil
}

// printTimeline prints, per window of the run, the requests due in it and
// the worst and median latency among them: a stall shows as a run of
// windows whose worst latency exceeds the window length. With CPU samples
// it adds the client's worst queueing (sent - due) and, over the window,
// each CPU's busy and stolen share and each watched process's cores: a
// stall with the server's CPU busy is the server's, one with the server's
// CPU idle and the client's busy is the client's.
func printTimeline(res *loadResult, w time.Duration, samples []cpuSample, watched namedPids) {
	t0 := res.started.UnixNano()
	type win struct {
		lat     []int64
		waitMax int64
	}
	var wins []win
	for i := range res.due {
		if res.end[i] == 0 {
			continue
		}
		k := int((res.due[i] - t0) / int64(w))
		for len(wins) <= k {
			wins = append(wins, win{})
		}
		wins[k].lat = append(wins[k].lat, res.end[i]-res.due[i])
		wins[k].waitMax = max(wins[k].waitMax, res.sent[i]-res.due[i])
	}
	for k, x := range wins {
		p := percentiles(x.lat, 50, 100)
		line := fmt.Sprintf("timeline t=%6.2fs n=%5d p50_ms=%8.3f max_ms=%8.3f", float64(k)*w.Seconds(), len(x.lat), p[0], p[1])
		if k+1 < len(samples) {
			line += fmt.Sprintf(" wait_max_ms=%.3f", float64(x.waitMax)/1e6) + samples[k].until(samples[k+1], watched)
		}
		fmt.Println(line)
	}
}

// cpuSample is the machine's per-CPU times and the watched processes' CPU
// seconds at one instant.
type cpuSample struct {
	at    time.Time
	cpus  []cpuTimes
	procs []float64
}

func takeCPUSample(watched namedPids) cpuSample {
	cpus, _ := perCPUTimes()
	return cpuSample{at: time.Now(), cpus: cpus, procs: watched.cpu()}
}

// until formats what happened between a and b: " cpuN_busy=… cpuN_steal=…"
// per CPU and " NAME_cores=…" per watched process.
func (a cpuSample) until(b cpuSample, watched namedPids) string {
	el := b.at.Sub(a.at).Seconds()
	if el <= 0 {
		return ""
	}
	var sb strings.Builder
	for i := range min(len(a.cpus), len(b.cpus)) {
		fmt.Fprintf(&sb, " cpu%d_busy=%.2f cpu%d_steal=%.2f", i, (b.cpus[i].busy-a.cpus[i].busy)/el, i, (b.cpus[i].steal-a.cpus[i].steal)/el)
	}
	for i, p := range watched {
		if i < len(a.procs) && i < len(b.procs) {
			fmt.Fprintf(&sb, " %s_cores=%.2f", p.name, (b.procs[i]-a.procs[i])/el)
		}
	}
	return sb.String()
}

// cpuSampler takes a cpuSample every window from its start until stop.
type cpuSampler struct {
	done chan struct{}
	out  chan []cpuSample
}

// startCPUSampler samples now and then every w. The samples of a window
// are taken by a goroutine of this client, so a client short of CPU takes
// them late; the shares are computed over the times actually between them.
func startCPUSampler(w time.Duration, watched namedPids) *cpuSampler {
	s := &cpuSampler{done: make(chan struct{}), out: make(chan []cpuSample, 1)}
	first := takeCPUSample(watched)
	go func() {
		samples := []cpuSample{first}
		t := time.NewTicker(w)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				samples = append(samples, takeCPUSample(watched))
			case <-s.done:
				s.out <- append(samples, takeCPUSample(watched))
				return
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the samples.
func (s *cpuSampler) stop() []cpuSample {
	close(s.done)
	return <-s.out
}
