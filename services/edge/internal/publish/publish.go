// Package publish moves accepted hits from the request path to Kafka.
//
// The request path never waits for Kafka: the handler fills a pooled
// *hit.Raw and Publish puts it on a bounded queue, or drops and counts it
// when the queue is full. A few workers take records off the queue in
// batches, encode them into buffers they own, recycle the records at once,
// and hand each batch to a Sink, which blocks until every record is
// acknowledged or has failed. Records the sink refuses go to an optional
// Fallback (the disk spool) before the buffers are reused; without one they
// are counted as dropped.
//
// In-flight memory is bounded: the queue holds at most QueueSize records and
// each worker at most BatchSize encoded records.
package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pixelstream/pixelstream/pkg/hit"
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

// Fallback receives the messages a Sink refused, with the error, before
// their buffers are reused; it must copy what it keeps. It returns nil if it
// kept them all (the disk spool that replays them later), or an error, in
// which case they are counted as dropped.
type Fallback func(failed []kafka.Message, cause error) error

// Config configures a Publisher.
type Config struct {
	Sink Sink
	// Fallback is optional; see Fallback.
	Fallback Fallback
	// QueueSize bounds the records waiting for a worker.
	QueueSize int
	// Workers is the number of concurrent Sink writes.
	Workers int
	// BatchSize bounds the records per Sink write.
	BatchSize int
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
)

// Publisher is the bounded queue and the workers behind it.
type Publisher struct {
	sink      Sink
	fallback  Fallback
	batchSize int
	log       *zap.Logger

	pool  sync.Pool
	queue chan *hit.Raw

	// mu orders Publish against Close: Publish sends under the read lock,
	// Close closes the queue under the write lock, so no send can hit a
	// closed channel and no record is left behind uncounted.
	mu     sync.RWMutex
	closed bool

	// writeCtx is cancelled when Close runs out of time, to abandon writes
	// stuck on an unreachable broker.
	writeCtx    context.Context
	abortWrites context.CancelFunc
	workers     sync.WaitGroup

	published      prometheus.Counter
	droppedFull    prometheus.Counter
	droppedFailed  prometheus.Counter
	droppedClosed  prometheus.Counter
	fallbackKept   prometheus.Counter
	batchDuration  prometheus.Histogram
	fullLog        rateLog
	failedLog      rateLog
	fallbackFailed rateLog
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
		fallback:  cfg.Fallback,
		batchSize: cfg.BatchSize,
		log:       log,
		queue:     make(chan *hit.Raw, cfg.QueueSize),
	}
	p.pool.New = func() any { return new(hit.Raw) }
	p.writeCtx, p.abortWrites = context.WithCancel(context.Background())

	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_edge_dropped_total",
		Help: "Accepted hits that were not published, by reason: queue_full (the publish queue was full), publish_failed (Kafka refused them and no fallback kept them), shutdown (still queued when the shutdown deadline passed).",
	}, []string{"reason"})
	p.droppedFull = dropped.WithLabelValues(ReasonQueueFull)
	p.droppedFailed = dropped.WithLabelValues(ReasonPublishFailed)
	p.droppedClosed = dropped.WithLabelValues(ReasonShutdown)
	p.published = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_published_total",
		Help: "Hits acknowledged by Kafka.",
	})
	p.fallbackKept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_fallback_kept_total",
		Help: "Hits Kafka refused that the fallback (disk spool) kept.",
	})
	p.batchDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "pixelstream_edge_publish_batch_duration_seconds",
		Help:    "Time to write one batch to Kafka, including retries.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
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
	for _, c := range []prometheus.Collector{dropped, p.published, p.fallbackKept, p.batchDuration, queueLen, queueCap} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}

	p.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go p.work()
	}
	return p, nil
}

// NewRecord returns an empty record for the handler to fill. Its buffers
// come from earlier records, so filling it usually allocates nothing.
func (p *Publisher) NewRecord() *hit.Raw {
	return p.pool.Get().(*hit.Raw)
}

// Publish queues r and takes ownership of it. It never blocks: if the queue
// is full (or the publisher is closed) the record is dropped, counted and
// recycled, and Publish returns false.
func (p *Publisher) Publish(r *hit.Raw) bool {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		p.droppedClosed.Inc()
		p.recycle(r)
		return false
	}
	select {
	case p.queue <- r:
		p.mu.RUnlock()
		return true
	default:
	}
	p.mu.RUnlock()
	p.droppedFull.Inc()
	p.recycle(r)
	if n, ok := p.fullLog.allow(); ok {
		p.log.Warn("publish queue full: dropping hits", zap.Int64("dropped", n), zap.Int("queue_size", cap(p.queue)))
	}
	return false
}

func (p *Publisher) recycle(r *hit.Raw) {
	r.Reset()
	p.pool.Put(r)
}

// Close stops taking records, lets the workers publish everything queued,
// and waits for them until ctx is done. If ctx ends first, the writes still
// running are abandoned, the records still queued are counted as dropped
// (reason shutdown), and ctx's error is returned. The Sink is not closed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()

	done := make(chan struct{})
	go func() {
		p.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.abortWrites()
		return nil
	case <-ctx.Done():
	}
	p.abortWrites()
	<-done // workers return promptly once their write is cancelled
	return ctx.Err()
}

// work is one worker: it batches whatever is queued, up to BatchSize,
// without waiting for more (kafka-go's BatchTimeout already merges
// concurrent batches per partition), and writes it.
func (p *Publisher) work() {
	defer p.workers.Done()
	b := newBatch(p.batchSize)
	for r := range p.queue {
		b.add(r)
		p.recycle(r)
	fill:
		for b.len() < p.batchSize {
			select {
			case r, ok := <-p.queue:
				if !ok {
					break fill
				}
				b.add(r)
				p.recycle(r)
			default:
				break fill
			}
		}
		if p.writeCtx.Err() != nil {
			// Close ran out of time: start no new writes, just account
			// for what is left.
			p.droppedClosed.Add(float64(b.len()))
			b.reset()
			continue
		}
		if !p.flush(b) {
			// The write was abandoned and the sink may still hold the
			// batch: never touch it again.
			b = newBatch(p.batchSize)
		}
	}
}

// flush writes b and settles every message in it: published, kept by the
// fallback, or dropped. It reports whether b's buffers may be reused.
func (p *Publisher) flush(b *batch) bool {
	msgs := b.messages()
	start := time.Now()
	err := p.sink.Write(p.writeCtx, msgs)
	p.batchDuration.Observe(time.Since(start).Seconds())

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
	p.published.Add(float64(len(msgs) - len(failed)))
	p.settleFailed(failed, err)
	if p.writeCtx.Err() != nil {
		return false
	}
	b.reset()
	return true
}

func (p *Publisher) settleFailed(failed []kafka.Message, cause error) {
	if len(failed) == 0 {
		return
	}
	cause = firstError(cause)
	if p.fallback != nil {
		ferr := p.fallback(failed, cause)
		if ferr == nil {
			p.fallbackKept.Add(float64(len(failed)))
			return
		}
		if n, ok := p.fallbackFailed.allow(); ok {
			p.log.Error("fallback could not keep refused hits", zap.Error(ferr), zap.Int64("batches", n))
		}
	}
	p.droppedFailed.Add(float64(len(failed)))
	if n, ok := p.failedLog.allow(); ok {
		p.log.Error("publishing to Kafka failed: dropping hits", zap.Error(cause),
			zap.Int("records", len(failed)), zap.Int64("failed_batches", n))
	}
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

// batch is a worker's reusable encoding space: a key and a value buffer per
// slot, and the message slice that points into them.
type batch struct {
	keys, values [][]byte
	msgs         []kafka.Message
	failed       []kafka.Message
}

func newBatch(size int) *batch {
	return &batch{
		keys:   make([][]byte, size),
		values: make([][]byte, size),
		msgs:   make([]kafka.Message, 0, size),
		failed: make([]kafka.Message, 0, size),
	}
}

func (b *batch) len() int { return len(b.msgs) }

// add encodes r into the next slot. The record key is the visitor key, so a
// visitor's hits stay on one partition and in order; the record timestamp is
// the receive time.
func (b *batch) add(r *hit.Raw) {
	i := len(b.msgs)
	b.keys[i] = hit.AppendVisitorKey(b.keys[i][:0], r.ProjectID, r.ClientIP, r.UserAgent)
	b.values[i] = r.AppendProto(b.values[i][:0])
	b.msgs = append(b.msgs, kafka.Message{
		Key:   b.keys[i],
		Value: b.values[i],
		Time:  time.Unix(0, r.ReceivedAtNs),
	})
}

func (b *batch) messages() []kafka.Message { return b.msgs }

// maxKeptValue caps the buffer a slot keeps between batches, so one huge
// record does not pin its buffer forever.
const maxKeptValue = 64 << 10

func (b *batch) reset() {
	for i := range b.msgs {
		if cap(b.values[i]) > maxKeptValue {
			b.values[i] = nil
		}
		b.msgs[i] = kafka.Message{}
	}
	b.msgs = b.msgs[:0]
	for i := range b.failed {
		b.failed[i] = kafka.Message{}
	}
	b.failed = b.failed[:0]
}

// rateLog lets one log line through per second and counts the events it
// held back, so a flood of drops costs a counter increment, not a log write.
type rateLog struct {
	next   atomic.Int64 // unix nanos before which lines are suppressed
	events atomic.Int64
}

// allow records one event and reports whether to log now, with the number
// of events since the last line.
func (l *rateLog) allow() (int64, bool) {
	l.events.Add(1)
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		return 0, false
	}
	return l.events.Swap(0), true
}
