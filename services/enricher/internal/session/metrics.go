package session

import "github.com/prometheus/client_golang/prometheus"

type collector struct {
	t                                     *Tracker
	open, hits, rekeyed, removed, lateHit *prometheus.Desc
}

// Collector returns a Prometheus collector for the tracker's metrics:
//
//	pixelstream_enricher_sessions_open                 sessions held in memory
//	pixelstream_enricher_session_hits_total{kind}      hits by kind: start or continue
//	pixelstream_enricher_sessions_rekeyed_total        sessions continued across midnight under the new visitor id
//	pixelstream_enricher_sessions_removed_total{reason} sessions dropped from memory: idle (ended normally) or evicted (cap reached; may split a session)
//	pixelstream_enricher_session_late_hits_total       hits older than their visitor's open session by the timeout or more
//
// It reads atomic counters at scrape time, so Observe pays nothing for it.
func (t *Tracker) Collector() prometheus.Collector {
	return &collector{t: t,
		open: prometheus.NewDesc("pixelstream_enricher_sessions_open",
			"Sessions held in memory by this instance.", nil, nil),
		hits: prometheus.NewDesc("pixelstream_enricher_session_hits_total",
			"Hits seen by the session tracker, by kind: start (first hit of a session) or continue.", []string{"kind"}, nil),
		rekeyed: prometheus.NewDesc("pixelstream_enricher_sessions_rekeyed_total",
			"Sessions continued after midnight under the visitor's new id, found by the previous day's id.", nil, nil),
		removed: prometheus.NewDesc("pixelstream_enricher_sessions_removed_total",
			"Sessions dropped from memory: idle (no hit within the idle retention) or evicted (the session cap was reached; the visitor's next hit starts a new session).",
			[]string{"reason"}, nil),
		lateHit: prometheus.NewDesc("pixelstream_enricher_session_late_hits_total",
			"Hits received the session timeout or more before their visitor's latest hit, reported as one-hit sessions.", nil, nil),
	}
}

// Describe sends the descriptors of every metric Collect reports.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.hits
	ch <- c.rekeyed
	ch <- c.removed
	ch <- c.lateHit
}

// Collect reads the counters once and reports them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.t.Stats()
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(st.Open))
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Started), "start")
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(st.Continued), "continue")
	ch <- prometheus.MustNewConstMetric(c.rekeyed, prometheus.CounterValue, float64(st.Rekeyed))
	ch <- prometheus.MustNewConstMetric(c.removed, prometheus.CounterValue, float64(st.Expired), "idle")
	ch <- prometheus.MustNewConstMetric(c.removed, prometheus.CounterValue, float64(st.Evicted), "evicted")
	ch <- prometheus.MustNewConstMetric(c.lateHit, prometheus.CounterValue, float64(st.Late))
}
