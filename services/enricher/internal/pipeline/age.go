package pipeline

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NewEventAge registers pixelstream_enricher_event_age_seconds on reg: how
// old events are (now minus the record timestamp, which the edge sets to the
// time it received the hit) at a point of the pipeline, by point. It is the
// freshness of the enriched topic, and split by point it says where the
// time goes: before the enricher fetched a hit, or inside it.
func NewEventAge(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pixelstream_enricher_event_age_seconds",
		Help:    "Age of events (now minus the edge's receive time) when fetched, and when their enriched record was acknowledged by Kafka.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
	}, []string{"point"})
	reg.MustRegister(h)
	return h
}

// ObserveAge returns a stage that records the age of every input record of
// a batch under the label point, and never fails. Records without a
// timestamp are skipped.
func ObserveAge(h *prometheus.HistogramVec, point string) Stage {
	o := h.WithLabelValues(point)
	return StageFunc(func(_ context.Context, b *Batch) error {
		now := time.Now()
		for i := range b.In {
			if t := b.In[i].Time; !t.IsZero() {
				o.Observe(now.Sub(t).Seconds())
			}
		}
		return nil
	})
}
