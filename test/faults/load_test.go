package faults

import (
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// apiKey is the static key the edge is started with.
const apiKey = "fk"

const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// loadSpec is a bounded constant-rate pixel load: at most max hits, for at
// most maxDur, rate hits per second, from workers concurrent clients.
type loadSpec struct {
	name    string // page paths are /f/<name>/<n>
	addr    string // the edge's public host:port
	rate    int
	max     int
	maxDur  time.Duration
	first   int // first n, so several loads of one test keep paths unique
	pad     int // bytes of hex padding in an ignored query parameter (bigger spooled records)
	workers int
}

// outcome is what the edge answered to one hit.
type outcome struct {
	status int
	gif    bool // Content-Type image/gif and the 43-byte body
	err    string
}

// load runs a loadSpec in the background.
type load struct {
	spec   loadSpec
	client *http.Client
	start  time.Time

	mu  sync.Mutex
	res []outcome // indexed by n - first; grows as hits are sent

	stop chan struct{}
	done chan struct{}
}

func pagePath(name string, n int) string { return fmt.Sprintf("/f/%s/%d", name, n) }

// startLoad starts sending; Stop or Wait ends it.
func startLoad(t *testing.T, spec loadSpec) *load {
	t.Helper()
	if spec.workers == 0 {
		spec.workers = 32
	}
	if spec.rate <= 0 || spec.max <= 0 || spec.maxDur <= 0 {
		t.Fatalf("load %s: rate, max and maxDur must be positive", spec.name)
	}
	l := &load{
		spec: spec,
		client: &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: spec.workers,
				DisableCompression:  true,
			},
		},
		res:  make([]outcome, 0, spec.max),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	jobs := make(chan int, spec.workers)
	var wg sync.WaitGroup
	for range spec.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				o := l.fire(spec.first + i)
				l.mu.Lock()
				l.res[i] = o
				l.mu.Unlock()
			}
		}()
	}
	l.start = time.Now()
	go func() {
		defer close(l.done)
		defer wg.Wait()
		defer close(jobs)
		interval := time.Second / time.Duration(spec.rate)
		deadline := time.NewTimer(spec.maxDur)
		defer deadline.Stop()
		next := time.Now()
		for i := 0; i < spec.max; i++ {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-l.stop:
					return
				case <-deadline.C:
					return
				}
			}
			select {
			case <-l.stop:
				return
			case <-deadline.C:
				return
			default:
			}
			l.mu.Lock()
			l.res = append(l.res, outcome{err: "not answered yet"})
			l.mu.Unlock()
			jobs <- i
			next = next.Add(interval)
			if now := time.Now(); now.Sub(next) > time.Second {
				next = now // behind by over a second (the edge stalled): no catch-up burst
			}
		}
	}()
	t.Cleanup(l.Stop)
	return l
}

func (l *load) fire(n int) outcome {
	q := url.Values{
		"key": {apiKey},
		"url": {"https://shop.example" + pagePath(l.spec.name, n)},
	}
	if l.spec.pad > 0 {
		r := rand.New(rand.NewPCG(uint64(n), 7)) // incompressible, deterministic
		p := make([]byte, (l.spec.pad+1)/2)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		q.Set("pad", hex.EncodeToString(p))
	}
	req, _ := http.NewRequest("GET", "http://"+l.spec.addr+"/api/v1/pixel?"+q.Encode(), nil)
	req.Host = "t.shop.example"
	req.Header.Set("User-Agent", userAgent)
	// 64 visitors: hits spread over the topic's partitions.
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.0.%d", n%64+1))
	resp, err := l.client.Do(req)
	if err != nil {
		return outcome{err: err.Error()}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := outcome{status: resp.StatusCode}
	if err != nil {
		o.err = err.Error()
	}
	o.gif = err == nil && resp.Header.Get("Content-Type") == "image/gif" && len(body) == 43 && string(body[:6]) == "GIF89a"
	return o
}

// Stop stops sending and waits for the hits in flight.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// Wait waits until the load has sent max hits or run maxDur.
func (l *load) Wait() { <-l.done }

// loadCounts are the sender's figures.
type loadCounts struct {
	sent     int // requests made
	accepted int // 200 with the GIF
	other    int // answered, but not 200 + GIF
	failed   int // no answer (connection refused, reset, timeout)
	errs     map[string]int
	statuses map[int]int
}

func (l *load) counts() loadCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := loadCounts{errs: map[string]int{}, statuses: map[int]int{}}
	for _, o := range l.res {
		c.sent++
		switch {
		case o.status == 200 && o.gif:
			c.accepted++
		case o.status != 0:
			c.other++
			c.statuses[o.status]++
		default:
			c.failed++
			if len(c.errs) < 5 {
				c.errs[o.err]++
			}
		}
	}
	return c
}

// accepted adds the page paths the edge answered 200 with the GIF for.
func (l *load) accepted(into map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.res {
		if o.status == 200 && o.gif {
			into[pagePath(l.spec.name, l.spec.first+i)] = true
		}
	}
}

// sentPaths adds every page path a request was made for.
func (l *load) sentPaths(into map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.res {
		into[pagePath(l.spec.name, l.spec.first+i)] = true
	}
}
