// Package enrich turns raw hits into enriched pageviews. A Step fills some
// fields of the output from the raw record; the Stage runs the steps over a
// batch, encodes the JSON and routes records that cannot be enriched to the
// dead-letter topic, so one bad record never stops a partition.
package enrich

import (
	"context"
	"fmt"
	"sync"
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

// Scratch is per-record working memory for strings that steps format (ids,
// timestamps, addresses). It is reset for every record, after the previous
// one has been encoded, so the strings never outlive their bytes.
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

// Stage enriches every record of a batch into Batch.Out.
type Stage struct {
	Steps           []Step
	EnrichedTopic   string
	DeadletterTopic string
	Log             *zap.Logger
	// Records counts input records by outcome: "enriched" or one of the
	// deadletter reason classes.
	Records *prometheus.CounterVec
	Now     func() time.Time
	// Warm, if set, is called for each distinct User-Agent of a batch, from
	// WarmWorkers goroutines, before the records are enriched in order: it
	// fills the parsers' caches, so the regex parse of a User-Agent
	// never seen before runs on every core instead of stalling the single
	// ordered enrichment loop.
	Warm        func(ua []byte)
	WarmWorkers int

	// raws and errs hold the batch decoded once: the warm-up and the
	// ordered loop both read them.
	raws    []hit.Raw
	errs    []error
	pv      pageview.Pageview
	scratch Scratch
	spans   []span
}

type span struct{ out, start, end int }

// NewRecordsCounter returns the counter Stage.Records expects, registered on reg.
func NewRecordsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_enricher_records_total",
		Help: "Raw records processed, by outcome: enriched, the dead-letter reason (decode, invalid, enrich), or the reason a record was withheld on purpose (duplicate, dnt, gpc).",
	}, []string{"outcome"})
	reg.MustRegister(c)
	return c
}

// Process fills b.Out with one record per input. It never fails: records
// that cannot be enriched become dead letters.
func (s *Stage) Process(_ context.Context, b *pipeline.Batch) error {
	s.decode(b.In)
	if s.Warm != nil {
		s.warm()
	}
	s.spans = s.spans[:0]
	for i := range b.In {
		in := &b.In[i]
		start := len(b.Arena)
		var class, reason string
		var skip *Skip
		b.Arena, class, reason, skip = s.one(&s.raws[i], s.errs[i], b.Arena)
		if skip != nil {
			b.Arena = b.Arena[:start]
			s.Records.WithLabelValues(skip.Reason).Inc()
			// An empty topic marks "nothing to produce" for the produce stage.
			b.Out = append(b.Out, kafka.Message{})
			continue
		}
		if class != "" {
			b.Arena = b.Arena[:start]
			s.Records.WithLabelValues(class).Inc()
			s.Log.Warn("record sent to the dead-letter topic", zap.String("class", class), zap.String("reason", reason),
				zap.Int("partition", in.Partition), zap.Int64("offset", in.Offset))
			b.Out = append(b.Out, deadletter.New(*in, s.DeadletterTopic, class, reason, s.now()))
			continue
		}
		s.Records.WithLabelValues("enriched").Inc()
		s.spans = append(s.spans, span{len(b.Out), start, len(b.Arena)})
		b.Out = append(b.Out, kafka.Message{Topic: s.EnrichedTopic, Key: in.Key})
	}
	// Values are cut from the arena only now: appending may have moved it.
	for _, sp := range s.spans {
		b.Out[sp.out].Value = b.Arena[sp.start:sp.end:sp.end]
	}
	return nil
}

func (s *Stage) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// one enriches a single record, appending its JSON to arena. A non-empty
// class means the record must be dead-lettered for reason.
func (s *Stage) one(raw *hit.Raw, decodeErr error, arena []byte) (out []byte, class, reason string, skip *Skip) {
	defer func() {
		if p := recover(); p != nil {
			out, class, reason, skip = arena, deadletter.ReasonEnrich, fmt.Sprintf("panic: %v", p), nil
		}
	}()
	if decodeErr != nil {
		return arena, deadletter.ReasonDecode, decodeErr.Error(), nil
	}
	if err := Validate(raw); err != nil {
		return arena, deadletter.ReasonInvalid, err.Error(), nil
	}
	s.pv.Reset()
	s.scratch.buf = s.scratch.buf[:0]
	for _, st := range s.Steps {
		if err := st.Enrich(raw, &s.pv, &s.scratch); err != nil {
			if sk, ok := err.(*Skip); ok {
				return arena, "", "", sk
			}
			return arena, deadletter.ReasonEnrich, err.Error(), nil
		}
	}
	return s.pv.AppendJSON(arena), "", "", nil
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

// decode decodes every record of the batch once into s.raws (reused
// across batches; fields alias the records' values, which outlive the
// batch).
func (s *Stage) decode(in []kafka.Message) {
	if cap(s.raws) < len(in) {
		s.raws = make([]hit.Raw, len(in))
		s.errs = make([]error, len(in))
	}
	s.raws, s.errs = s.raws[:len(in)], s.errs[:len(in)]
	for i := range in {
		s.errs[i] = s.raws[i].Unmarshal(in[i].Value)
	}
}

// warm runs Warm over the batch's distinct User-Agents in parallel. Records
// that do not decode are skipped here and dead-lettered by the main loop.
func (s *Stage) warm() {
	seen := make(map[string]struct{}, 64)
	var uas [][]byte
	for i := range s.raws {
		ua := s.raws[i].UserAgent
		if s.errs[i] != nil || len(ua) == 0 {
			continue
		}
		if _, ok := seen[string(ua)]; ok {
			continue
		}
		seen[string(ua)] = struct{}{}
		uas = append(uas, ua)
	}
	workers := min(max(s.WarmWorkers, 1), len(uas))
	if workers <= 1 {
		for _, ua := range uas {
			s.Warm(ua)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan []byte)
	for range workers {
		wg.Go(func() {
			for ua := range next {
				s.Warm(ua)
			}
		})
	}
	for _, ua := range uas {
		next <- ua
	}
	close(next)
	wg.Wait()
}
