package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// scrape returns the sum of every sample of each named metric family
// (labels ignored) and, for name{label="v"} keys, the single series.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: the drain scrapes every 100 ms, and gzip made promhttp
	// build a ~1 MB deflate writer per scrape in the process under test
	// (105 MB allocated in a 10 s drain profile, 1.2 % of its CPU).
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		name := series
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name = series[:i]
			out[series] = v
		}
		out[name] += v
	}
	return out, sc.Err()
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cmdDrain measures the enricher draining a pre-filled topic: from the
// first poll that sees records done to the poll that sees all n, the
// records per second, the CPU seconds the process spent (utime+stime), the
// records per CPU second, and the User-Agent cache hit rate.
func cmdDrain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	admin := fs.String("admin", "http://127.0.0.1:18101", "enricher admin base URL")
	label := fs.String("label", "", "prefix of the printed keys")
	pid := fs.Int("pid", 0, "enricher process id")
	brokerPid := fs.Int("broker-pid", 0, "broker process id: its CPU over the same window is reported too (0: not)")
	n := fs.Int("n", 1_500_000, "records to wait for")
	timeout := fs.Duration("timeout", 4*time.Minute, "give up after this long")
	every := fs.Duration("every", 100*time.Millisecond, "poll interval")
	cpuProfile := fs.String("cpuprofile", "", "also save a CPU profile of the enricher taken while it drains")
	profSeconds := fs.Int("profile-seconds", 10, "length of that CPU profile")
	allocProfile := fs.String("allocprofile", "", "save the allocs profile at the end")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out := &prefixWriter{prefix: *label}
	defer out.flush()
	metricsURL := *admin + "/metrics"

	type sample struct {
		t         time.Time
		c         float64
		cpu       float64
		brokerCPU float64
		idle      float64 // the machine's idle CPU-seconds (/proc/stat)
		steal     float64 // CPU-seconds the hypervisor gave to other guests
	}
	var first, last, half sample
	var brokerThreads map[string]float64 // at first
	profDone := make(chan error, 1)
	started := false
	for {
		m, err := scrape(ctx, metricsURL)
		now := time.Now()
		if err == nil {
			cpu, cerr := cpuSeconds(*pid)
			if cerr != nil {
				return fmt.Errorf("enricher process: %w", cerr)
			}
			c := m["pixelstream_enricher_records_total"]
			var bcpu float64
			if *brokerPid != 0 {
				bcpu, _ = cpuSeconds(*brokerPid)
			}
			idle, steal, _ := machineTimes()
			if !started && c > 0 {
				started = true
				first = sample{now, c, cpu, bcpu, idle, steal}
				if *brokerPid != 0 {
					brokerThreads, _ = threadCPU(*brokerPid)
				}
				if *cpuProfile != "" {
					go func() {
						profDone <- fetchTo(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", *admin, *profSeconds), *cpuProfile)
					}()
				}
			}
			if started {
				last = sample{now, c, cpu, bcpu, idle, steal}
				if half.t.IsZero() && c >= float64(*n)/2 {
					half = last
				}
			}
			if c >= float64(*n) {
				el := last.t.Sub(first.t).Seconds()
				done := last.c - first.c
				cpuUsed := last.cpu - first.cpu
				hits := m["pixelstream_enricher_useragent_cache_hits_total"]
				misses := m["pixelstream_enricher_useragent_cache_misses_total"]
				fmt.Fprintf(out, "enricher_records=%.0f window_records=%.0f window_s=%.2f events_per_s=%.0f cpu_s=%.2f cores_used=%.2f events_per_cpu_s=%.0f\n",
					c, done, el, done/el, cpuUsed, cpuUsed/el, done/cpuUsed)
				// Where the rest of the machine went: the broker's share and
				// what stayed idle tell whether more enricher parallelism
				// could have had a core to run on.
				fmt.Fprintf(out, "broker_cores=%.2f idle_cores=%.2f steal_cores=%.2f\n", (last.brokerCPU-first.brokerCPU)/el,
					(last.idle-first.idle)/el, (last.steal-first.steal)/el)
				// Which of the broker's threads: request handling, or the
				// JVM's own work (JIT compilers, G1's concurrent marking),
				// which a long-running broker would not be doing.
				if brokerThreads != nil {
					if now, err := threadCPU(*brokerPid); err == nil {
						fmt.Fprintf(out, "broker_threads=%s\n", threadCores(brokerThreads, now, el, 5))
					}
				}
				if hw := last.t.Sub(half.t).Seconds(); hw > 0 && last.cpu > half.cpu {
					fmt.Fprintf(out, "second_half_events_per_s=%.0f second_half_events_per_cpu_s=%.0f\n",
						(last.c-half.c)/hw, (last.c-half.c)/(last.cpu-half.cpu))
				}
				fmt.Fprintf(out, "ua_cache_hits=%.0f ua_cache_misses=%.0f ua_cache_hit_rate=%.4f\n", hits, misses, hits/(hits+misses))
				var parts []string
				for _, st := range []string{"enrich", "produce", "commit"} {
					s := m[`pixelstream_enricher_stage_duration_seconds_sum{stage="`+st+`"}`]
					parts = append(parts, fmt.Sprintf("stage_%s_s=%.2f", st, s))
				}
				fmt.Fprintln(out, strings.Join(parts, " "))
				var outcomes []string
				for k, v := range m {
					if strings.HasPrefix(k, "pixelstream_enricher_records_total{") {
						outcomes = append(outcomes, fmt.Sprintf("%s=%.0f", strings.TrimSuffix(strings.TrimPrefix(k, `pixelstream_enricher_records_total{outcome="`), `"}`), v))
					}
				}
				fmt.Fprintf(out, "outcomes: %s\n", strings.Join(outcomes, " "))
				if hwm, err := statusKB(*pid, "VmHWM"); err == nil {
					fmt.Fprintf(out, "enricher_vmhwm_mib=%.1f\n", float64(hwm)/1024)
				}
				if *allocProfile != "" {
					if err := fetchTo(ctx, *admin+"/debug/pprof/allocs", *allocProfile); err != nil {
						fmt.Fprintln(os.Stderr, "allocs profile:", err)
					}
				}
				if *cpuProfile != "" {
					if err := <-profDone; err != nil {
						fmt.Fprintln(os.Stderr, "cpu profile:", err)
					}
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out: %.0f of %d records after %s (last scrape error: %v)", last.c, *n, *timeout, err)
		case <-time.After(*every):
		}
	}
}

// prefixWriter prefixes every key=value token of its lines with prefix.
type prefixWriter struct {
	prefix string
	buf    strings.Builder
}

func (w *prefixWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *prefixWriter) flush() {
	for _, line := range strings.SplitAfter(w.buf.String(), "\n") {
		if line == "" {
			continue
		}
		if w.prefix == "" {
			fmt.Print(line)
			continue
		}
		toks := strings.Fields(line)
		for i, t := range toks {
			if strings.Contains(t, "=") {
				toks[i] = w.prefix + t
			}
		}
		fmt.Println(strings.Join(toks, " "))
	}
}
