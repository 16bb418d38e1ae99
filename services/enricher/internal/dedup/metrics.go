package dedup

import "github.com/prometheus/client_golang/prometheus"

type collector struct {
	w                                   *Window
	checked, dups, unchecked, rot, held *prometheus.Desc
}

// Collector returns a Prometheus collector for the window's metrics:
//
//	pixelstream_enricher_dedup_checked_total          event ids looked up
//	pixelstream_enricher_dedup_duplicates_total       hits dropped as duplicates
//	pixelstream_enricher_dedup_unchecked_total        hits without an event id (not deduplicated)
//	pixelstream_enricher_dedup_rotations_total{reason} generations ended: time (the window elapsed) or full (MaxIDs/2 reached first: the window is shorter than configured)
//	pixelstream_enricher_dedup_ids                    event ids held
//
// It reads atomic counters at scrape time, so Seen pays nothing for it.
func (w *Window) Collector() prometheus.Collector {
	return &collector{w: w,
		checked: prometheus.NewDesc("pixelstream_enricher_dedup_checked_total",
			"Event ids looked up in the duplicate window.", nil, nil),
		dups: prometheus.NewDesc("pixelstream_enricher_dedup_duplicates_total",
			"Hits whose event id was already in the window: dropped as duplicates.", nil, nil),
		unchecked: prometheus.NewDesc("pixelstream_enricher_dedup_unchecked_total",
			"Hits with a zero event id, which cannot be deduplicated.", nil, nil),
		rot: prometheus.NewDesc("pixelstream_enricher_dedup_rotations_total",
			"Generations of the duplicate window ended: time (the window elapsed) or full (MaxIDs/2 ids came first, so ids were remembered for less than the window).",
			[]string{"reason"}, nil),
		held: prometheus.NewDesc("pixelstream_enricher_dedup_ids",
			"Event ids held in the duplicate window.", nil, nil),
	}
}

// Describe sends the descriptors of every metric Collect reports.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.checked
	ch <- c.dups
	ch <- c.unchecked
	ch <- c.rot
	ch <- c.held
}

// Collect reads the counters once and reports them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	ch <- prometheus.MustNewConstMetric(c.checked, prometheus.CounterValue, float64(st.Checked))
	ch <- prometheus.MustNewConstMetric(c.dups, prometheus.CounterValue, float64(st.Duplicates))
	ch <- prometheus.MustNewConstMetric(c.unchecked, prometheus.CounterValue, float64(st.Unchecked))
	ch <- prometheus.MustNewConstMetric(c.rot, prometheus.CounterValue, float64(st.TimeRotations), "time")
	ch <- prometheus.MustNewConstMetric(c.rot, prometheus.CounterValue, float64(st.FullRotations), "full")
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(st.Held))
}
