// Package publish moves accepted hits from the request path to Kafka.
//
// The request path never waits for Kafka or the disk: the handler fills a
// pooled *hit.Raw, and Publish encodes it (visitor key and protobuf value)
// into a pooled entry and puts that on a bounded queue, or drops and counts
// it when the queue is full. Encoding on the request path reads the
// request's bytes while they are still in the CPU's caches, and lets the
// record alias them instead of copying them: a worker encoding records a
// linger later read them from cold memory (~0.7 us per hit in a profile
// under load, against BenchmarkEncode's 0.24), and BenchmarkHandlerMix
// spends ~8 % less per hit this way.
//
// A few workers take turns taking entries off the queue in batches (one
// fills a batch while the others write theirs; a part batch waits for the
// write in flight, so the broker gets few, large produce requests), and
// either write the batch to the Sink (which blocks until every record is
// acknowledged or has failed) or, while the publisher is spooling, append
// it to the disk spool.
//
// Spooling (with a Spool configured) starts when Kafka refuses records (the
// refused batch becomes a front batch of the spool: it is older than
// anything spooled after it), when the queue is past SpillAt while Kafka is
// slow (a write in flight for SlowWrite or more), or when it is nearly full
// with no write acknowledged for SlowWrite (a spiller goroutine then moves
// the queue to disk so the handler does not drop). While spooling, every new
// record goes through the spool, so new hits never overtake spooled ones;
// one replayer goroutine sends the spool to Kafka, oldest first, one batch
// at a time, retrying a failed batch with backoff until Kafka takes it, and
// stops spooling once the spool is empty (checked while appends are held
// off, so nothing slips past).
//
// A queue past SpillAt while Kafka answers promptly means the edge is short
// of CPU, and spooling mode would make that worse: every spooled hit costs a
// disk write and a read back on top of its Kafka write, and a saturated edge
// never empties the spool (measured: a quarter of the hits of a saturated
// edge with a healthy broker went through the disk). Then the queue absorbs
// the burst, request goroutines yield their CPU to the workers, and only
// when the queue is nearly full does its excess go to the spool (overflow),
// new hits staying direct.
//
// In-flight memory is bounded: the queue holds at most QueueSize entries,
// each worker and the spiller at most BatchSize, the replayer one replay
// batch. Entries go back to a pool once their batch is settled.
package publish

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/logging"
	"github.com/pixelstream/pixelstream/services/edge/internal/spool"
)

// Sink delivers encoded records.
//
// Write blocks until every message in msgs is acknowledged or has failed,
// and returns nil when all were acknowledged. Otherwise a kafka.WriteErrors
// with one entry per message tells which failed (nil entries were
// delivered), and any other error means none was delivered. The sink owns
// msgs until Write returns; after that the caller reuses the Key and Value
// buffers, so a sink must copy anything it keeps. If ctx is cancelled, Write
// may return before the messages are settled; the caller then assumes they
// failed and never reuses their buffers.
type Sink interface {
	Write(ctx context.Context, msgs []kafka.Message) error
}

// Spool is the disk spool (*spool.Spool); see that package.
type Spool interface {
	Append(msgs []kafka.Message) (int, error)
	AppendFront(msgs []kafka.Message) error
	Take(max int, wait time.Duration, wake <-chan struct{}) (*spool.Batch, error)
	Commit(b *spool.Batch) error
	Release(b *spool.Batch) error
	Drained() bool
	Bytes() int64
	MaxBytes() int64
}

// Config configures a Publisher.
type Config struct {
	Sink Sink
	// Spool is optional: without one, records Kafka refuses and records
	// still queued at the shutdown deadline are dropped and counted.
	Spool Spool
	// QueueSize bounds the records waiting for a worker.
	QueueSize int
	// Workers is the number of concurrent Sink writes.
	Workers int
	// BatchSize bounds the records per Sink write.
	BatchSize int
	// Linger is how long a worker holding fewer than BatchSize records
	// waits for more before writing them (Kafka's linger.ms); past it, the
	// batch still waits for a write in flight to end (holdBehindWrites).
	// 0 writes what is queued at once when no write is in flight. The
	// edge's default (-publish-linger, 10 ms) halves the broker's CPU per
	// hit against 2 ms, which pays per produce request
	// (docs/performance.md).
	Linger time.Duration
	// SpillAt is the queue length past which the queue is moved to the
	// spool when Kafka is slow (default 90% of QueueSize). A lower mark
	// spills on short bursts a slow broker would still absorb, and once
	// spooling, every hit goes through the disk until the spool is empty.
	SpillAt int
	// SlowWrite is how long a Kafka write may be in flight before Kafka
	// counts as slow (default 500 ms; a healthy write takes 5–50 ms).
	SlowWrite time.Duration
	// ReplayBatchSize bounds the records per replay write (default
	// Workers × BatchSize: one replay write does the work of all workers).
	ReplayBatchSize int
	// ReplayBackoffMin and ReplayBackoffMax bound the wait between failed
	// replay writes (defaults 100 ms and 5 s).
	ReplayBackoffMin, ReplayBackoffMax time.Duration
	// ShutdownReserve is the part of Close's deadline kept for spooling
	// what Kafka has not taken (default a quarter of the time left, at
	// most 2 s).
	ShutdownReserve time.Duration
	// Registerer receives the metrics; Log the (rate-limited) drop reports.
	Registerer prometheus.Registerer
	Log        *zap.Logger
}

// Drop reasons, the values of the reason label of
// pixelstream_edge_dropped_total.
const (
	ReasonQueueFull     = "queue_full"
	ReasonPublishFailed = "publish_failed"
	ReasonShutdown      = "shutdown"
	ReasonSpoolFull     = "spool_full"
	ReasonSpoolError    = "spool_error"
)

// Publisher is the bounded queue and the workers behind it.
type Publisher struct {
	sink      Sink
	spool     Spool
	batchSize int
	linger    time.Duration
	replayMax int
	spillAt   int
	fullMark  int
	slowWrite time.Duration
	// inflight holds, per worker, when its current Kafka write started
	// (unix ns), 0 when it has none.
	inflight []atomic.Int64
	// lastAck is when a worker's write was last acknowledged (unix ns).
	lastAck atomic.Int64
	// collecting is held by the one worker filling a batch: idle workers
	// taking records of their own would each start a batch and a linger,
	// and the requests would multiply with the workers.
	collecting sync.Mutex
	// ended gets a token when a worker's write ends, which frees a batch
	// held behind it (writing tells whether one is in flight).
	ended chan struct{}
	// full is signalled by Publish when the queue holds the records
	// (need) that would fill the part batch a worker lingers or holds on.
	full    chan struct{}
	need    atomic.Int64
	yieldAt int
	// yield is runtime.Gosched, replaceable in tests.
	yield   func()
	yields  prometheus.Counter
	backoff [2]time.Duration
	reserve time.Duration
	log     *zap.Logger

	pool  sync.Pool
	queue chan *entry

	// mu orders Publish against Close: Publish sends under the read lock,
	// Close closes the queue under the write lock, so no send can hit a
	// closed channel and no record is left behind uncounted.
	mu     sync.RWMutex
	closed bool

	// modeMu orders the spooling decision against the replayer's switch
	// back to direct writes: appends and the start of direct writes happen
	// under the read lock, the switch under the write lock.
	modeMu   sync.RWMutex
	spooling atomic.Bool
	direct   atomic.Int64 // direct Sink writes in progress
	// directCh is closed while writing directly and open while spooling,
	// under modeMu: parked workers wait on it.
	directCh chan struct{}
	spill    chan struct{} // wakes the spiller
	wake     chan struct{} // wakes the replayer
	stop     chan struct{} // closed by Close
	bg       sync.WaitGroup

	// writeCtx is cancelled when Close runs out of time, to abandon writes
	// stuck on an unreachable broker.
	writeCtx    context.Context
	abortWrites context.CancelFunc
	workers     sync.WaitGroup

	published      prometheus.Counter
	droppedFull    prometheus.Counter
	droppedFailed  prometheus.Counter
	droppedClosed  prometheus.Counter
	droppedSpool   prometheus.Counter
	droppedSpoolIO prometheus.Counter
	fallbackKept   prometheus.Counter
	overflowed     prometheus.Counter
	spooled        prometheus.Counter
	replayed       prometheus.Counter
	batchDuration  prometheus.Histogram
	batchRecords   prometheus.Histogram
	fullLog        logging.Throttle
	failedLog      logging.Throttle
	spoolFullLog   logging.Throttle
	overflowLog    logging.Throttle
	replayLog      logging.Throttle
}

// New starts a Publisher's workers and registers its metrics.
func New(cfg Config) (*Publisher, error) {
	if cfg.Sink == nil {
		return nil, errors.New("publish: no sink")
	}
	if cfg.QueueSize < 1 || cfg.Workers < 1 || cfg.BatchSize < 1 {
		return nil, fmt.Errorf("publish: queue size %d, workers %d and batch size %d must be positive",
			cfg.QueueSize, cfg.Workers, cfg.BatchSize)
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	// Drops are operational events with a reason, not bugs: a stack trace
	// on each line would only bury the reason.
	log = log.WithOptions(zap.AddStacktrace(zapcore.DPanicLevel))
	p := &Publisher{
		sink:      cfg.Sink,
		spool:     cfg.Spool,
		batchSize: cfg.BatchSize,
		linger:    cfg.Linger,
		replayMax: cfg.ReplayBatchSize,
		spillAt:   cfg.SpillAt,
		backoff:   [2]time.Duration{cfg.ReplayBackoffMin, cfg.ReplayBackoffMax},
		reserve:   cfg.ShutdownReserve,
		log:       log,
		queue:     make(chan *entry, cfg.QueueSize),
		spill:     make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		ended:     make(chan struct{}, 1),
		full:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	if p.replayMax < 1 {
		p.replayMax = cfg.Workers * cfg.BatchSize
	}
	if p.spillAt < 1 || p.spillAt > cfg.QueueSize {
		p.spillAt = max(cfg.QueueSize*9/10, 1)
	}
	p.fullMark = max(cfg.QueueSize-cfg.QueueSize/32, 1)
	p.slowWrite = cfg.SlowWrite
	if p.slowWrite <= 0 {
		p.slowWrite = 500 * time.Millisecond
	}
	p.inflight = make([]atomic.Int64, cfg.Workers)
	p.need.Store(int64(cfg.BatchSize))
	p.yieldAt = max(cfg.QueueSize/4, 1)
	p.yield = runtime.Gosched
	if p.backoff[0] <= 0 {
		p.backoff[0] = 100 * time.Millisecond
	}
	if p.backoff[1] < p.backoff[0] {
		p.backoff[1] = max(5*time.Second, p.backoff[0])
	}
	p.pool.New = func() any { return new(hit.Raw) }
	p.writeCtx, p.abortWrites = context.WithCancel(context.Background())

	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_edge_dropped_total",
		Help: "Accepted hits that were not published, by reason: queue_full (the publish queue was full), publish_failed (Kafka refused them and there is no spool), shutdown (still queued when the shutdown deadline passed, without a spool), spool_full (the spool was at -spool-max-bytes or its disk was full), spool_error (the spool could not write or read them back).",
	}, []string{"reason"})
	p.droppedFull = dropped.WithLabelValues(ReasonQueueFull)
	p.droppedFailed = dropped.WithLabelValues(ReasonPublishFailed)
	p.droppedClosed = dropped.WithLabelValues(ReasonShutdown)
	p.droppedSpool = dropped.WithLabelValues(ReasonSpoolFull)
	p.droppedSpoolIO = dropped.WithLabelValues(ReasonSpoolError)
	p.published = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_published_total",
		Help: "Hits acknowledged by Kafka, directly or replayed from the spool.",
	})
	p.fallbackKept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_fallback_kept_total",
		Help: "Hits Kafka refused that the disk spool kept (part of pixelstream_edge_spooled_total).",
	})
	p.overflowed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_overflow_spooled_total",
		Help: "Hits moved to the disk spool because the publish queue was nearly full while no Kafka write had been in flight for " + p.slowWrite.String() + ": the edge is short of CPU, or its writes are slower than the queue lasts (part of pixelstream_edge_spooled_total).",
	})
	p.spooled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_spooled_total",
		Help: "Hits written to the disk spool.",
	})
	p.replayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_spool_replayed_total",
		Help: "Hits from the disk spool acknowledged by Kafka (part of pixelstream_edge_published_total).",
	})
	p.batchDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pixelstream_edge_publish_batch_duration_seconds",
		Help:    "Time to write one batch to Kafka, including retries.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	p.batchRecords = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pixelstream_edge_publish_batch_records",
		Help:    "Hits per batch write to Kafka, direct or replayed (a batch becomes one produce request per partition leader it touches).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096},
	})
	p.yields = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_publish_yields_total",
		Help: "Hits whose request goroutine gave its CPU to the publish workers because the queue was a quarter full: the edge is short of CPU for publishing.",
	})
	queueLen := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pixelstream_edge_queue_length",
		Help: "Hits waiting in the publish queue.",
	}, func() float64 { return float64(len(p.queue)) })
	queueCap := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pixelstream_edge_queue_capacity",
		Help: "Size of the publish queue; hits beyond it are dropped.",
	})
	queueCap.Set(float64(cfg.QueueSize))
	collectors := []prometheus.Collector{dropped, p.yields, p.published, p.fallbackKept, p.overflowed, p.spooled, p.replayed, p.batchDuration, p.batchRecords, queueLen, queueCap}
	if p.spool != nil {
		collectors = append(collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "pixelstream_edge_spool_bytes",
				Help: "Bytes of hits held in the disk spool (records plus 4 bytes of framing each).",
			}, func() float64 { return float64(p.spool.Bytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "pixelstream_edge_spool_capacity_bytes",
				Help: "The spool's bound (-spool-max-bytes); hits beyond it are dropped and /readyz fails.",
			}, func() float64 { return float64(p.spool.MaxBytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "pixelstream_edge_spooling",
				Help: "1 while new hits go through the disk spool (Kafka refused hits, was slow, or the spool is not yet replayed), else 0.",
			}, func() float64 {
				if p.spooling.Load() {
					return 1
				}
				return 0
			}))
	}
	for _, c := range collectors {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}

	p.directCh = make(chan struct{})
	if p.spool != nil && !p.spool.Drained() {
		// Records from an earlier run go first.
		p.spooling.Store(true)
		p.log.Info("spool holds hits from an earlier run: replaying them before new ones", zap.Int64("bytes", p.spool.Bytes()))
	} else {
		close(p.directCh)
	}
	p.workers.Add(cfg.Workers)
	for i := range cfg.Workers {
		go p.work(&p.inflight[i])
	}
	if p.spool != nil {
		p.bg.Add(2)
		go p.spiller()
		go p.replayer()
	}
	return p, nil
}

// NewRecord returns an empty record for the handler to fill (pooled, so
// handing it out allocates nothing).
func (p *Publisher) NewRecord() *hit.Raw {
	return p.pool.Get().(*hit.Raw)
}

// Publish encodes r, queues the encoding and takes r back. Nothing keeps
// r's byte slices once Publish returns, so they may alias the caller's
// buffers (the request's). It never blocks and never touches the disk: if
// the queue is full (or the publisher is closed) the hit is dropped and
// counted, and Publish returns false. When the queue is over a quarter full
// it yields the processor once (runtime.Gosched) so the workers can catch
// up.
func (p *Publisher) Publish(r *hit.Raw) bool {
	e := newEntry(r)
	// Zeroed rather than Reset: Reset keeps the slices for reuse, and they
	// may point into the caller's buffers.
	*r = hit.Raw{}
	p.pool.Put(r)
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.droppedClosed.Inc()
		e.free()
		return false
	}
	select {
	case p.queue <- e:
		p.mu.RUnlock()
		n := len(p.queue)
		if int64(n) >= p.need.Load() {
			select {
			case p.full <- struct{}{}:
			default:
			}
		}
		if n >= p.yieldAt {
			// A queue filling on a healthy broker means the workers are
			// short of CPU, not that Kafka is down: giving them this
			// goroutine's processor before the response is written lets
			// the queue drain, where spilling to disk would spend more
			// CPU per hit than Kafka does. It delays this response by a
			// scheduling slice, never by a wait on Kafka.
			p.yields.Inc()
			p.yield()
		}
		if p.spool != nil && n >= p.spillAt {
			p.signalSpill()
		}
		return true
	default:
	}
	p.mu.RUnlock()
	p.droppedFull.Inc()
	e.free()
	if p.spool != nil {
		p.signalSpill()
	}
	if n, ok := p.fullLog.Allow(); ok {
		p.log.Warn("publish queue full: dropping hits", zap.Int64("dropped", n), zap.Int("queue_size", cap(p.queue)))
	}
	return false
}

func (p *Publisher) signalSpill() {
	select {
	case p.spill <- struct{}{}:
	default:
	}
}

// signalReplay wakes the replayer without waiting.
func (p *Publisher) signalReplay() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Spooling reports whether new records go through the spool.
func (p *Publisher) Spooling() bool { return p.spooling.Load() }

// Close stops taking records and settles everything queued: published,
// or, with a spool, spooled. It waits until ctx is done. With a spool and
// a deadline, writes still running when only the shutdown reserve is left
// are abandoned and their records, and everything still queued, are
// spooled; the replayer stops at once (what it holds stays first in the
// spool). Without a spool, what is left at the deadline is counted as
// dropped (reason shutdown). It returns ctx's error if ctx ended first.
// The Sink and the Spool are not closed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	first := !p.closed
	if first {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	if first {
		close(p.stop)
		p.signalReplay()
	}

	done := make(chan struct{})
	go func() {
		p.workers.Wait()
		p.bg.Wait()
		close(done)
	}()
	var abort <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok && p.spool != nil {
		left := time.Until(deadline)
		reserve := p.reserve
		if reserve <= 0 {
			reserve = min(2*time.Second, left/4)
		}
		t := time.NewTimer(max(left-reserve, 0))
		defer t.Stop()
		abort = t.C
	}
	for {
		select {
		case <-done:
			p.abortWrites()
			p.settleLeftovers()
			return nil
		case <-abort:
			// Spool what Kafka has not taken while there is time.
			p.abortWrites()
			abort = nil
			continue
		case <-ctx.Done():
		}
		break
	}
	p.abortWrites()
	<-done // workers return promptly once their write is cancelled
	p.settleLeftovers()
	return ctx.Err()
}

// settleLeftovers spools (or counts) what is still queued once workers and
// spiller are gone: parked workers leave the queue to the spiller, which
// may have left already if spooling started during the shutdown.
func (p *Publisher) settleLeftovers() {
	b := newBatch(p.batchSize)
	for e := range p.queue {
		b.add(e)
		p.fillBatch(b)
		p.keepOrDrop(b.messages(), false, nil)
		b.reset()
	}
}

// work is one worker: it batches whatever is queued, up to BatchSize,
// waiting up to Linger for more (and past it while another worker's write
// is in flight), and writes or spools it. One worker fills a batch at a
// time; the others are writing or waiting for their turn. While
// spooling it parks: the spiller alone takes records off the queue then,
// so they reach the spool in queue order.
func (p *Publisher) work(inflight *atomic.Int64) {
	defer p.workers.Done()
	b := newBatch(p.batchSize)
	b.inflight = inflight
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		if p.spool != nil && p.spooling.Load() {
			select {
			case <-p.directSignal():
				continue
			case <-p.stop:
				return // the spiller drains the queue
			}
		}
		p.collecting.Lock()
		e, ok := <-p.queue
		if !ok {
			p.collecting.Unlock()
			return
		}
		// Signals from before this batch began say nothing about it.
		select {
		case <-p.ended:
		default:
		}
		select {
		case <-p.full:
		default:
		}
		b.add(e)
		p.lingerFill(b, linger)
		p.holdBehindWrites(b)
		p.need.Store(int64(p.batchSize))
		p.collecting.Unlock()
		if !p.route(b) {
			// The write was abandoned and the sink may still hold the
			// batch: never touch it again.
			b = newBatch(p.batchSize)
			b.inflight = inflight
		}
	}
}

func (p *Publisher) directSignal() <-chan struct{} {
	p.modeMu.RLock()
	defer p.modeMu.RUnlock()
	return p.directCh
}

// lingerFill waits up to Linger for records while b is not full. It
// sleeps through the linger rather than taking records as they come: a
// worker woken by every hit costs the request path a goroutine switch per
// hit. Publish wakes it early when the queue holds what would fill b.
func (p *Publisher) lingerFill(b *batch, t *time.Timer) {
	p.fillBatch(b)
	if p.linger <= 0 || b.len() >= p.batchSize {
		return
	}
	t.Reset(p.linger)
	defer t.Stop()
	if p.await(b) {
		select {
		case <-t.C:
		case <-p.full:
		case <-p.stop:
		}
	}
	p.fillBatch(b)
}

// await tells Publish how many records would fill b, and reports whether
// fewer are queued, so the caller should wait for the full signal.
func (p *Publisher) await(b *batch) bool {
	need := p.batchSize - b.len()
	p.need.Store(int64(need))
	return len(p.queue) < need
}

// holdBehindWrites keeps filling b past its linger while another worker's
// write is in flight, until that write ends or b is full. So one request is
// in flight at a time while the broker keeps up, and it carries everything
// that arrived during the previous round trip, as Kafka's producer does;
// only full batches go out beside it, so a slow broker still gets every
// worker's write. The broker's CPU is mostly per produce request, not per
// record (docs/performance.md): at 25,000 hits/s one batch filling at a
// time instead of four cut it from 0.24-0.29 to 0.16-0.19 cores.
func (p *Publisher) holdBehindWrites(b *batch) {
	for b.len() < p.batchSize && p.writing() {
		if p.await(b) {
			select {
			case <-p.ended:
			case <-p.full:
				p.fillBatch(b)
				continue
			case <-p.stop:
			}
		}
		p.fillBatch(b)
		return
	}
}

// writing reports whether a worker's Kafka write is in flight.
func (p *Publisher) writing() bool {
	n, _ := p.writesInFlight()
	return n > 0
}

// take adds one queued record to b without waiting, and reports whether
// there was one.
func (p *Publisher) take(b *batch) bool {
	select {
	case e, ok := <-p.queue:
		if !ok {
			return false
		}
		b.add(e)
		return true
	default:
		return false
	}
}

// fillBatch adds whatever is queued to b, up to the batch size.
func (p *Publisher) fillBatch(b *batch) {
	for b.len() < p.batchSize && p.take(b) {
	}
}

// route writes b to Kafka or, while spooling, appends it to the spool. It
// reports whether b's buffers may be reused.
func (p *Publisher) route(b *batch) bool {
	if p.writeCtx.Err() != nil {
		// Close ran out of time: start no new writes.
		p.keepOrDrop(b.messages(), false, nil)
		b.reset()
		return true
	}
	if p.spool == nil {
		return p.flush(b)
	}
	p.modeMu.RLock()
	if p.spooling.Load() {
		p.appendSpool(b.messages())
		p.modeMu.RUnlock()
		b.reset()
		return true
	}
	p.direct.Add(1)
	p.modeMu.RUnlock()
	defer p.direct.Add(-1)
	return p.flush(b)
}

// appendSpool appends msgs to the spool's tail and counts what it could
// not keep.
func (p *Publisher) appendSpool(msgs []kafka.Message) {
	n, err := p.spool.Append(msgs)
	p.spooled.Add(float64(n))
	if err != nil {
		p.spoolDrop(len(msgs)-n, err)
	}
}

func (p *Publisher) spoolDrop(n int, err error) {
	if spool.IsDiskFull(err) {
		p.droppedSpool.Add(float64(n))
	} else {
		p.droppedSpoolIO.Add(float64(n))
	}
	if c, ok := p.spoolFullLog.Allow(); ok {
		p.log.Error("spool cannot keep hits: dropping them", zap.Error(err), zap.Int("records", n),
			zap.Int64("spool_bytes", p.spool.Bytes()), zap.Int64("spool_max_bytes", p.spool.MaxBytes()),
			zap.Int64("events", c))
	}
}

// keepOrDrop settles records that will not be written to Kafka now: with a
// spool they are spooled (front: refused by Kafka, older than anything
// spooled meanwhile; else the tail), without one they are counted as
// dropped.
func (p *Publisher) keepOrDrop(msgs []kafka.Message, refused bool, cause error) {
	if len(msgs) == 0 {
		return
	}
	if p.spool == nil {
		if refused {
			p.droppedFailed.Add(float64(len(msgs)))
			if n, ok := p.failedLog.Allow(); ok {
				p.log.Error("publishing to Kafka failed: dropping hits", zap.Error(cause),
					zap.Int("records", len(msgs)), zap.Int64("failed_batches", n))
			}
		} else {
			p.droppedClosed.Add(float64(len(msgs)))
		}
		return
	}
	if !refused {
		p.appendSpool(msgs)
		return
	}
	p.enterSpooling("Kafka refused hits", cause)
	if err := p.spool.AppendFront(msgs); err != nil {
		p.spoolDrop(len(msgs), err)
		return
	}
	p.spooled.Add(float64(len(msgs)))
	p.fallbackKept.Add(float64(len(msgs)))
}

// enterSpooling makes new records go through the spool.
func (p *Publisher) enterSpooling(why string, cause error) {
	if p.spooling.Load() {
		return
	}
	p.modeMu.Lock()
	started := !p.spooling.Load()
	if started {
		p.spooling.Store(true)
		p.directCh = make(chan struct{})
	}
	p.modeMu.Unlock()
	if !started {
		return
	}
	p.signalReplay()
	p.signalSpill()
	fields := []zap.Field{zap.Int64("spool_bytes", p.spool.Bytes())}
	if cause != nil {
		fields = append(fields, zap.Error(cause))
	}
	p.log.Warn(why+": spooling new hits to disk until the spool is replayed", fields...)
}

// flush writes b and settles every message in it: published, spooled, or
// dropped. It reports whether b's buffers may be reused.
func (p *Publisher) flush(b *batch) bool {
	msgs := b.messages()
	start := time.Now()
	if b.inflight != nil {
		b.inflight.Store(start.UnixNano())
	}
	err := p.sink.Write(p.writeCtx, msgs)
	if b.inflight != nil {
		b.inflight.Store(0)
		select {
		case p.ended <- struct{}{}:
		default:
		}
	}
	end := time.Now()
	p.batchDuration.Observe(end.Sub(start).Seconds())
	p.batchRecords.Observe(float64(len(msgs)))

	failed := msgs[:0]
	var werrs kafka.WriteErrors
	switch {
	case err == nil:
	case errors.As(err, &werrs) && len(werrs) == len(msgs):
		failed = b.failed[:0]
		for i := range msgs {
			if werrs[i] != nil {
				failed = append(failed, msgs[i])
			}
		}
		b.failed = failed
	default:
		failed = msgs
	}
	if len(failed) < len(msgs) {
		p.lastAck.Store(end.UnixNano())
	}
	p.published.Add(float64(len(msgs) - len(failed)))
	if len(failed) > 0 {
		p.keepOrDrop(failed, true, firstError(err))
	}
	if p.writeCtx.Err() != nil {
		return false
	}
	b.reset()
	return true
}

// spiller moves the queue to the spool: it starts spooling when the queue
// fills past SpillAt (the workers may all be stuck in slow Kafka writes),
// and while spooling it is the queue's only consumer, so records reach the
// spool in the order they were queued.
func (p *Publisher) spiller() {
	defer p.bg.Done()
	b := newBatch(p.batchSize)
	for {
		if !p.spooling.Load() {
			select {
			case <-p.spill:
			case <-p.stop:
				return // writing directly: the workers drain the queue
			}
			if !p.spooling.Load() {
				n := len(p.queue)
				switch {
				case n < p.spillAt:
					continue
				case p.kafkaSlow():
					p.enterSpooling("publish queue past its spill mark and a Kafka write in flight for over "+p.slowWrite.String(), nil)
				case n >= p.fullMark && p.ackedWithin(p.slowWrite):
					p.overflow(b)
					continue
				case n >= p.fullMark:
					p.enterSpooling("publish queue nearly full and no Kafka write acknowledged for "+p.slowWrite.String(), nil)
				default:
					// Kafka answers promptly: the workers are short of
					// CPU, and the queue absorbs the burst.
					continue
				}
			}
		}
		select {
		case e, ok := <-p.queue:
			if !ok {
				return // closed and empty
			}
			b.add(e)
			p.fillBatch(b)
			if !p.route(b) {
				b = newBatch(p.batchSize)
			}
		case <-p.directSignal():
		}
	}
}

// overflow moves the oldest queued records to the spool's tail until the
// queue is down to half its spill mark, without leaving direct mode. Kafka
// answers promptly, so this is a burst beyond what the workers can encode
// and send (the edge is short of CPU, or writes under SlowWrite still take
// longer than the queue lasts at this rate), and only the excess pays the disk
// round trip; spooling mode would send every new hit through the disk until
// the spool is empty, which a saturated edge never reaches. The replayer
// sends these records alongside the workers' writes, so they may reach Kafka
// after newer hits, as hits of one visitor through two edge replicas can;
// the enricher's sessions accept hits out of order.
func (p *Publisher) overflow(b *batch) {
	low := p.spillAt / 2
	moved := 0
	for len(p.queue) > low {
		if p.fillBatch(b); b.len() == 0 {
			break
		}
		moved += b.len()
		p.appendSpool(b.messages())
		b.reset()
	}
	if moved == 0 {
		return
	}
	p.overflowed.Add(float64(moved))
	p.signalReplay()
	if n, ok := p.overflowLog.Allow(); ok {
		// "Promptly" only means no write is SlowWrite old: the load
		// harness saw an overflow in a run with writes of 100-250 ms. The
		// writes in flight tell the operator which it was.
		writes, oldest := p.writesInFlight()
		p.log.Warn("publish queue nearly full while no Kafka write is slow (the edge is short of CPU, or its writes take longer than the queue lasts): moved the oldest hits to the spool",
			zap.Int("records", moved), zap.Int("queue_size", cap(p.queue)), zap.Int64("events", n),
			zap.Int("writes_in_flight", writes), zap.Duration("oldest_write", oldest))
	}
}

// writesInFlight returns how many workers' Kafka writes are in flight and
// how long the oldest has been.
func (p *Publisher) writesInFlight() (n int, oldest time.Duration) {
	now := time.Now().UnixNano()
	for i := range p.inflight {
		if s := p.inflight[i].Load(); s != 0 {
			n++
			oldest = max(oldest, time.Duration(now-s))
		}
	}
	return n, oldest
}

// ackedWithin reports whether a worker's write was acknowledged within d.
func (p *Publisher) ackedWithin(d time.Duration) bool {
	last := p.lastAck.Load()
	return last != 0 && time.Now().UnixNano()-last < int64(d)
}

// kafkaSlow reports whether a worker's Kafka write has been in flight for
// SlowWrite or more.
func (p *Publisher) kafkaSlow() bool {
	_, oldest := p.writesInFlight()
	return oldest >= p.slowWrite
}

// replayer sends the spool to Kafka, oldest first, and ends spooling once
// it is empty.
func (p *Publisher) replayer() {
	defer p.bg.Done()
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		if !p.spooling.Load() {
			// Direct mode. Records still appear in the spool: overflow
			// (see overflow), or appended just as spooling ended (a
			// worker decided to spool before the switch). They are sent
			// alongside the workers' writes; new hits keep going direct.
			b, err := p.spool.Take(p.replayMax, time.Second, p.wake)
			if err != nil || b == nil {
				if err != nil && !errors.Is(err, spool.ErrClosed) {
					p.log.Error("spool: take", zap.Error(err))
				}
				continue
			}
			if !p.replayBatch(b) {
				return
			}
			continue
		}
		// Direct writes still running started before spooling did: their
		// refused records must reach the spool's front before the
		// replayer looks there.
		for p.direct.Load() > 0 {
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		b, err := p.spool.Take(p.replayMax, 100*time.Millisecond, p.wake)
		if err != nil {
			if !errors.Is(err, spool.ErrClosed) {
				p.log.Error("spool: take", zap.Error(err))
			}
			select {
			case <-p.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if b != nil && !p.replayBatch(b) {
			return
		}
		if b == nil || len(b.Msgs)+b.Corrupt < p.replayMax {
			// Perhaps empty: hold appends off and look.
			p.modeMu.Lock()
			if p.spool.Drained() {
				p.spooling.Store(false)
				close(p.directCh)
				p.log.Info("spool replayed: publishing directly again")
			}
			p.modeMu.Unlock()
		}
	}
}

// dropPermanent removes from failed the records no retry can deliver (a
// record too large for the broker, a topic that does not exist, ...; see
// pkg/errclass): retried forever they would block the spool behind them.
// They are counted as publish_failed and logged.
func (p *Publisher) dropPermanent(failed []kafka.Message, werrs kafka.WriteErrors, err error) []kafka.Message {
	if len(failed) == 0 {
		return failed
	}
	if len(werrs) == 0 {
		var tooLarge kafka.MessageTooLargeError
		if !errclass.IsPermanent(err) && !errors.As(err, &tooLarge) {
			return failed
		}
		p.droppedFailed.Add(float64(len(failed)))
		p.log.Error("Kafka refuses spooled hits for good: dropping them", zap.Error(err), zap.Int("records", len(failed)))
		return nil
	}
	kept := failed[:0]
	j := 0
	var first error
	for _, e := range werrs {
		if e == nil {
			continue
		}
		if errclass.IsPermanent(e) {
			first = e
		} else {
			kept = append(kept, failed[j])
		}
		j++
	}
	if n := len(failed) - len(kept); n > 0 {
		p.droppedFailed.Add(float64(n))
		p.log.Error("Kafka refuses spooled hits for good: dropping them", zap.Error(first), zap.Int("records", n))
	}
	return kept
}

// replayBatch writes b to Kafka, retrying what fails with backoff until it
// is all acknowledged (then commits b) or the publisher stops (then gives
// b back to the spool and returns false).
func (p *Publisher) replayBatch(b *spool.Batch) bool {
	if b.Corrupt > 0 {
		p.droppedSpoolIO.Add(float64(b.Corrupt))
		p.log.Error("spool: corrupt records dropped", zap.Int("records", b.Corrupt))
	}
	msgs := b.Msgs
	backoff := p.backoff[0]
	for len(msgs) > 0 {
		start := time.Now()
		err := p.sink.Write(p.writeCtx, msgs)
		p.batchDuration.Observe(time.Since(start).Seconds())
		p.batchRecords.Observe(float64(len(msgs)))
		var failed []kafka.Message
		var werrs kafka.WriteErrors
		switch {
		case err == nil:
		case errors.As(err, &werrs) && len(werrs) == len(msgs):
			for i := range msgs {
				if werrs[i] != nil {
					failed = append(failed, msgs[i])
				}
			}
		default:
			failed = msgs
			werrs = nil
		}
		ok := len(msgs) - len(failed)
		p.published.Add(float64(ok))
		p.replayed.Add(float64(ok))
		failed = p.dropPermanent(failed, werrs, err)
		if len(failed) == 0 {
			break
		}
		msgs = failed
		if n, ok := p.replayLog.Allow(); ok {
			p.log.Warn("replaying the spool to Kafka failed; retrying", zap.Error(firstError(err)),
				zap.Int("records", len(msgs)), zap.Duration("backoff", backoff), zap.Int64("failures", n))
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.stop:
			t.Stop()
			if err := p.spool.Release(b); err != nil {
				p.spoolDrop(len(b.Msgs), err)
			}
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, p.backoff[1])
	}
	if err := p.spool.Commit(b); err != nil {
		p.log.Error("spool: commit", zap.Error(err))
	}
	return true
}

// firstError turns kafka.WriteErrors into its first non-nil entry, which is
// what an operator needs in a log line.
func firstError(err error) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				return e
			}
		}
	}
	return err
}

// entry is one hit encoded for Kafka, as the queue and the batches hold
// it. Entries are pooled with their buffers.
type entry struct {
	key, value []byte
	// at is the receive time (unix ns), the record's timestamp.
	at int64
}

var entries = sync.Pool{New: func() any { return new(entry) }}

// newEntry encodes r into a pooled entry. The record key is the visitor
// key, so a visitor's hits stay on one partition and in order.
func newEntry(r *hit.Raw) *entry {
	e := entries.Get().(*entry)
	e.key = hit.AppendVisitorKey(e.key[:0], r.ProjectID, r.ClientIP, r.UserAgent)
	e.value = r.AppendProto(e.value[:0])
	e.at = r.ReceivedAtNs
	return e
}

// maxKeptValue caps the buffer an entry keeps in the pool, so one huge
// record does not pin its buffer forever.
const maxKeptValue = 64 << 10

// free returns e to the pool; nothing may use it afterwards.
func (e *entry) free() {
	if cap(e.value) > maxKeptValue {
		e.value = nil
	}
	entries.Put(e)
}

// batch is the entries a worker (or the spiller, or Close) is settling
// together, and the messages that point into them.
type batch struct {
	entries []*entry
	msgs    []kafka.Message
	failed  []kafka.Message
	// inflight, for a worker's batch, records when its write started.
	inflight *atomic.Int64
}

func newBatch(size int) *batch {
	return &batch{
		entries: make([]*entry, 0, size),
		msgs:    make([]kafka.Message, 0, size),
		failed:  make([]kafka.Message, 0, size),
	}
}

func (b *batch) len() int { return len(b.msgs) }

// add takes e into b, which frees it on reset. The record timestamp is the
// receive time.
func (b *batch) add(e *entry) {
	b.entries = append(b.entries, e)
	b.msgs = append(b.msgs, kafka.Message{Key: e.key, Value: e.value, Time: time.Unix(0, e.at)})
}

func (b *batch) messages() []kafka.Message { return b.msgs }

// reset frees b's entries, once its messages are settled.
func (b *batch) reset() {
	for i, e := range b.entries {
		e.free()
		b.entries[i] = nil
	}
	b.entries = b.entries[:0]
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.failed)
	b.failed = b.failed[:0]
}
