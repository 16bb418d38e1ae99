package visitor

import "github.com/prometheus/client_golang/prometheus"

// saltCollector reads SaltStore's atomic counters at scrape time, so the hot
// path pays one uncontended atomic add per fallback and nothing otherwise.
type saltCollector struct {
	s                                       *SaltStore
	fetchErrors, candidates, invalid        *prometheus.Desc
	fallbacks, unavailable, configIssues    *prometheus.Desc
	daysHeld, newestDay, lastErrorTimestamp *prometheus.Desc
}

// Collector returns a Prometheus collector for the store's metrics:
//
//	pixelstream_enricher_salt_fetch_errors_total        failed refreshes of the salts
//	pixelstream_enricher_salt_candidates_total          candidate salts this instance produced
//	pixelstream_enricher_salt_invalid_records_total     malformed salts-topic records skipped
//	pixelstream_enricher_salt_fallbacks_total{reason}   ids hashed with another day's salt (reason newer_day|older_day)
//	pixelstream_enricher_salt_unavailable_total         ids not computed: no salt held
//	pixelstream_enricher_salt_topic_config_issues_total salts topic settings unreadable or unsafe
//	pixelstream_enricher_salts_held                 salts held in memory (normally 2, 3 before midnight)
//	pixelstream_enricher_salt_newest_day_timestamp_seconds  00:00 UTC of the newest held salt's day
//	pixelstream_enricher_salt_last_fetch_error_timestamp_seconds  when the last refresh failed (0: never)
//
// Alert when newest_day is older than today's midnight: the hot path is on
// the newer_day fallback.
func (s *SaltStore) Collector() prometheus.Collector {
	return &saltCollector{s: s,
		fetchErrors: prometheus.NewDesc("pixelstream_enricher_salt_fetch_errors_total",
			"Failed refreshes of the daily salts from the salts topic (the held salts stay in use).", nil, nil),
		candidates: prometheus.NewDesc("pixelstream_enricher_salt_candidates_total",
			"Candidate salts this instance produced to the salts topic.", nil, nil),
		invalid: prometheus.NewDesc("pixelstream_enricher_salt_invalid_records_total",
			"Malformed records of the salts topic skipped while reading it.", nil, nil),
		fallbacks: prometheus.NewDesc("pixelstream_enricher_salt_fallbacks_total",
			"Visitor ids hashed with another day's salt: newer_day (the hit's day has no salt yet) or older_day (its salt is deleted).",
			[]string{"reason"}, nil),
		unavailable: prometheus.NewDesc("pixelstream_enricher_salt_unavailable_total",
			"Visitor ids not computed because no salt was held.", nil, nil),
		configIssues: prometheus.NewDesc("pixelstream_enricher_salt_topic_config_issues_total",
			"Times the salts topic's settings could not be read or would keep salts longer than 48 h.", nil, nil),
		daysHeld: prometheus.NewDesc("pixelstream_enricher_salts_held",
			"Daily salts held in memory.", nil, nil),
		newestDay: prometheus.NewDesc("pixelstream_enricher_salt_newest_day_timestamp_seconds",
			"00:00 UTC of the newest day whose salt is held (0 when none).", nil, nil),
		lastErrorTimestamp: prometheus.NewDesc("pixelstream_enricher_salt_last_fetch_error_timestamp_seconds",
			"Unix time of the last failed salt refresh (0 when none).", nil, nil),
	}
}

// Describe sends the descriptors of every metric Collect reports.
func (c *saltCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.fetchErrors, c.candidates, c.invalid, c.fallbacks, c.unavailable,
		c.configIssues, c.daysHeld, c.newestDay, c.lastErrorTimestamp} {
		ch <- d
	}
}

// Collect reads the counters once and reports them.
func (c *saltCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.fetchErrors, st.FetchErrors)
	counter(c.candidates, st.Candidates)
	counter(c.invalid, st.InvalidRecords)
	counter(c.fallbacks, st.NewerDayFallbacks, "newer_day")
	counter(c.fallbacks, st.OlderDayFallbacks, "older_day")
	counter(c.unavailable, st.Unavailable)
	counter(c.configIssues, st.TopicConfigIssues)
	ch <- prometheus.MustNewConstMetric(c.daysHeld, prometheus.GaugeValue, float64(len(st.Days)))
	newest := 0.0
	if n := len(st.Days); n > 0 {
		newest = float64(st.Days[n-1].Start().Unix())
	}
	ch <- prometheus.MustNewConstMetric(c.newestDay, prometheus.GaugeValue, newest)
	lastErr := 0.0
	if !st.LastErrorAt.IsZero() {
		lastErr = float64(st.LastErrorAt.Unix())
	}
	ch <- prometheus.MustNewConstMetric(c.lastErrorTimestamp, prometheus.GaugeValue, lastErr)
}
