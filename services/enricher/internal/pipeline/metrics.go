package pipeline

import (
	"context"
	"time"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/prometheus/client_golang/prometheus"
)

// StageMetrics are the per-stage Prometheus series shared by all stages.
type StageMetrics struct {
	Duration *prometheus.HistogramVec
	Errors   *prometheus.CounterVec
	Records  *prometheus.CounterVec
}

// NewStageMetrics registers the stage series on reg.
func NewStageMetrics(reg prometheus.Registerer) *StageMetrics {
	m := &StageMetrics{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pixelstream_enricher_stage_duration_seconds",
			Help:    "Time one stage took for one batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"stage"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pixelstream_enricher_stage_errors_total",
			Help: "Failed attempts of a stage, by error class (retried unless permanent).",
		}, []string{"stage", "class"}),
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pixelstream_enricher_stage_records_total",
			Help: "Input records that went through a stage successfully.",
		}, []string{"stage"}),
	}
	reg.MustRegister(m.Duration, m.Errors, m.Records)
	return m
}

// WithMetrics times s and counts its errors and records under the stage
// name. Wrap it inside WithRetry to count every attempt's error, outside to
// time the whole retried stage.
func WithMetrics(s Stage, name string, m *StageMetrics) Stage {
	dur := m.Duration.WithLabelValues(name)
	recs := m.Records.WithLabelValues(name)
	return StageFunc(func(ctx context.Context, b *Batch) error {
		start := time.Now()
		err := s.Process(ctx, b)
		dur.Observe(time.Since(start).Seconds())
		if err != nil {
			m.Errors.WithLabelValues(name, errclass.Reason(err)).Inc()
			return err
		}
		recs.Add(float64(len(b.In)))
		return nil
	})
}
