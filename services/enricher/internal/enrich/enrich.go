// Package enrich turns raw hits into enriched pageviews. A Step fills some
// fields of the output from the raw record; the Stage runs the steps over a
// batch, encodes the JSON and routes records that cannot be enriched to the
// dead-letter topic, so one bad record never stops a partition.
package enrich

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/deadletter"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Step fills fields of pv from raw. Strings it stores in pv must stay valid
// until the record is encoded, which Scratch and Str guarantee. A returned
// error sends the record to the dead-letter topic.
type Step interface {
	Enrich(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error
}

// StepFunc adapts a function to a Step.
type StepFunc func(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error

// Enrich calls f.
func (f StepFunc) Enrich(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error { return f(raw, pv, s) }

// Skip is returned by a step to withhold a record from every output topic
// on purpose (an honoured Do Not Track signal, a duplicate). Its Reason is
// the metric label, so it must come from a small fixed set. A skipped record
// is counted, its offset committed, and nothing is produced for it.
type Skip struct{ Reason string }

func (s *Skip) Error() string { return "skipped: " + s.Reason }

// Scratch is working memory for strings that steps format (ids,
// timestamps, addresses). It is reset only once the records whose strings
// it holds have been encoded (a worker's after each record, the ordered
// pass's after each batch), so the strings never outlive their bytes.
type Scratch struct {
	buf []byte
}

// Format appends with fn into the scratch buffer and returns what fn
// appended as a string, without copying.
func (s *Scratch) Format(fn func([]byte) []byte) string {
	start := len(s.buf)
	s.buf = fn(s.buf)
	if len(s.buf) == start {
		return ""
	}
	b := s.buf[start:]
	return unsafe.String(&b[0], len(b))
}

// Str returns b as a string without copying. Only for bytes that are never
// modified while the record is processed: the fetched Kafka record's value,
// which raw fields alias.
func Str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Stage enriches every record of a batch into Batch.Out, in two passes.
// The Ordered steps run first, on every record in offset order in the
// calling goroutine: they carry state from one record to the next (dedup,
// sessions). The per-record steps run next on Workers goroutines, each
// with its own chain from NewSteps, and each worker encodes the records it
// enriched. Only the ordered pass is serial, so a batch is enriched on
// every core instead of one. A record on which a per-record step fails (a
// panic: those steps return no error today) is dead-lettered after the
// ordered steps saw it, so its session has advanced: replaying it from the
// dead-letter topic counts it in the session once more.
type Stage struct {
	// Ordered steps see every record in offset order, one at a time, before
	// any per-record step: those that keep state across records or
	// withhold a record (HonourSignals, Dedup, Visitor). Their strings live
	// until the whole batch is encoded.
	Ordered []Step
	// NewSteps builds one worker's chain of the per-record steps. Chains
	// from different calls run at the same time on different records, so
	// they must share nothing they write (each has its own Shared).
	NewSteps func() []Step
	// Workers is how many goroutines enrich a batch (1 if unset); the
	// calling goroutine is one of them.
	Workers         int
	EnrichedTopic   string
	DeadletterTopic string
	Log             *zap.Logger
	// Records counts input records by outcome: "enriched" or one of the
	// deadletter reason classes.
	Records *prometheus.CounterVec
	Now     func() time.Time

	// Per-record state of the batch in hand, reused across batches: the
	// decoded record, its output, and what became of it.
	raws []hit.Raw
	errs []error
	pvs  []pageview.Pageview
	res  []result
	// ordScratch holds the ordered steps' strings for the whole batch.
	ordScratch Scratch
	workers    []*worker
	next       atomic.Int64 // the next record index a worker takes
	enriched   prometheus.Counter
}

// result is what became of one record: withheld, dead-lettered, or encoded
// into arena[start:end] of worker w.
type result struct {
	skip          *Skip
	class, reason string
	w, start, end int
}

func (r *result) done() bool { return r.skip != nil || r.class != "" }

// worker is one goroutine's chain of steps and its buffers.
type worker struct {
	steps   []Step
	scratch Scratch
	arena   []byte
}

// chunk is how many consecutive records a worker takes at a time: enough
// to amortise the shared counter, few enough that a chunk holding slow
// records (a User-Agent never seen before) does not leave the other
// workers idle at the end of a batch.
const chunk = 16

// NewRecordsCounter returns the counter Stage.Records expects, registered on reg.
func NewRecordsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_enricher_records_total",
		Help: "Raw records processed, by outcome: enriched, the dead-letter reason (decode, invalid, enrich), or the reason a record was withheld on purpose (duplicate, dnt, gpc).",
	}, []string{"outcome"})
	reg.MustRegister(c)
	return c
}

// Process fills b.Out with one record per input, in input order. It never
// fails: records that cannot be enriched become dead letters.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	n := len(b.In)
	s.decode(b.In)
	s.ordScratch.buf = s.ordScratch.buf[:0]
	for i := range n {
		s.ordered(i)
	}
	s.parallel(n)
	s.assemble(b)
	return nil
}

// ordered validates record i and runs the ordered steps on it.
func (s *Stage) ordered(i int) {
	r := &s.res[i]
	*r = result{}
	if err := s.errs[i]; err != nil {
		r.class, r.reason = deadletter.ReasonDecode, err.Error()
		return
	}
	if err := Validate(&s.raws[i]); err != nil {
		r.class, r.reason = deadletter.ReasonInvalid, err.Error()
		return
	}
	s.pvs[i].Reset()
	defer recoverInto(r)
	runSteps(s.Ordered, &s.raws[i], &s.pvs[i], &s.ordScratch, r)
}

// parallel runs the workers over the records the ordered pass let through.
func (s *Stage) parallel(n int) {
	if s.workers == nil {
		for range max(s.Workers, 1) {
			w := &worker{}
			if s.NewSteps != nil {
				w.steps = s.NewSteps()
			}
			s.workers = append(s.workers, w)
		}
	}
	use := min(len(s.workers), (n+chunk-1)/chunk)
	s.next.Store(0)
	var wg sync.WaitGroup
	for wi := 1; wi < use; wi++ {
		wg.Go(func() { s.work(wi, n) })
	}
	s.work(0, n)
	wg.Wait()
}

// work enriches and encodes chunks of records until none is left.
func (s *Stage) work(wi, n int) {
	w := s.workers[wi]
	w.arena = w.arena[:0]
	for {
		lo := int(s.next.Add(chunk)) - chunk
		if lo >= n {
			return
		}
		for i := lo; i < min(lo+chunk, n); i++ {
			if !s.res[i].done() {
				s.one(w, wi, i)
			}
		}
	}
}

// one runs w's chain on record i and encodes it into w's arena.
func (s *Stage) one(w *worker, wi, i int) {
	r := &s.res[i]
	defer recoverInto(r)
	// The scratch is reset per record: its strings are encoded below,
	// before the next record overwrites them.
	w.scratch.buf = w.scratch.buf[:0]
	if runSteps(w.steps, &s.raws[i], &s.pvs[i], &w.scratch, r) {
		r.w, r.start = wi, len(w.arena)
		w.arena = s.pvs[i].AppendJSON(w.arena)
		r.end = len(w.arena)
	}
}

// runSteps runs steps on one record and reports whether they all succeeded;
// otherwise r says why not.
func runSteps(steps []Step, raw *hit.Raw, pv *pageview.Pageview, sc *Scratch, r *result) bool {
	for _, st := range steps {
		if err := st.Enrich(raw, pv, sc); err != nil {
			if sk, ok := err.(*Skip); ok {
				r.skip = sk
			} else {
				r.class, r.reason = deadletter.ReasonEnrich, err.Error()
			}
			return false
		}
	}
	return true
}

// recoverInto turns a panicking step or encoder into a dead letter for its
// record, so one bad record never stops the partition.
func recoverInto(r *result) {
	if p := recover(); p != nil {
		*r = result{class: deadletter.ReasonEnrich, reason: fmt.Sprintf("panic: %v", p)}
	}
}

// assemble builds b.Out in input order, copying the workers' encoded
// records into the batch's arena (the workers' arenas are reused by the
// next batch, while this one may still be waiting to be produced). Giving
// every batch one arena per worker would save the copy (~0.5 % of the
// CPU), but each of those grows to the largest share its worker ever took:
// +8 MiB of peak RSS in the realistic drain.
func (s *Stage) assemble(b *pipeline.Batch) {
	size := 0
	for i := range b.In {
		if r := &s.res[i]; !r.done() {
			size += r.end - r.start
		}
	}
	b.Arena = slices.Grow(b.Arena[:0], size)
	enriched := 0
	for i := range b.In {
		in, r := &b.In[i], &s.res[i]
		switch {
		case r.skip != nil:
			s.Records.WithLabelValues(r.skip.Reason).Inc()
			// An empty topic marks "nothing to produce" for the produce stage.
			b.Out = append(b.Out, kafka.Message{})
		case r.class != "":
			s.Records.WithLabelValues(r.class).Inc()
			s.Log.Warn("record sent to the dead-letter topic", zap.String("class", r.class), zap.String("reason", r.reason),
				zap.Int("partition", in.Partition), zap.Int64("offset", in.Offset))
			b.Out = append(b.Out, deadletter.New(*in, s.DeadletterTopic, r.class, r.reason, s.now()))
		default:
			enriched++
			start := len(b.Arena)
			b.Arena = append(b.Arena, s.workers[r.w].arena[r.start:r.end]...)
			// Grown to size above, so the arena does not move while values
			// are cut from it.
			b.Out = append(b.Out, kafka.Message{Topic: s.EnrichedTopic, Key: in.Key, Value: b.Arena[start:len(b.Arena):len(b.Arena)]})
		}
	}
	if s.enriched == nil {
		s.enriched = s.Records.WithLabelValues("enriched")
	}
	s.enriched.Add(float64(enriched))
}

func (s *Stage) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Validate checks the fields every raw hit must carry.
func Validate(r *hit.Raw) error {
	switch {
	case r.SchemaVersion == 0 || r.SchemaVersion > hit.SchemaVersion:
		return fmt.Errorf("unsupported schema_version %d", r.SchemaVersion)
	case r.EventID.IsZero():
		return fmt.Errorf("missing event_id")
	case r.ReceivedAtNs <= 0:
		return fmt.Errorf("missing received_at_ns")
	case len(r.ProjectID) == 0:
		return fmt.Errorf("missing project_id")
	}
	return nil
}

// decode decodes every record of the batch once into s.raws, and sizes
// the per-record slices (reused across batches; raw fields alias the
// records' values, which outlive the batch).
func (s *Stage) decode(in []kafka.Message) {
	n := len(in)
	if cap(s.raws) < n {
		s.raws = make([]hit.Raw, n)
		s.errs = make([]error, n)
		s.pvs = make([]pageview.Pageview, n)
		s.res = make([]result, n)
	}
	s.raws, s.errs, s.pvs, s.res = s.raws[:n], s.errs[:n], s.pvs[:n], s.res[:n]
	for i := range in {
		s.errs[i] = s.raws[i].Unmarshal(in[i].Value)
	}
}
