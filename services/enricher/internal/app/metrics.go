package app

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pixelstream/pixelstream/services/enricher/internal/consumer"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
)

// produceHealth backs /readyz: not ready while producing has failed for
// longer than a grace period and not succeeded since.
type produceHealth struct {
	mu        sync.Mutex
	failingAt time.Time
	lastErr   error
}

const unhealthyAfter = 15 * time.Second

func (h *produceHealth) failed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingAt.IsZero() {
		h.failingAt = time.Now()
	}
	h.lastErr = err
}

func (h *produceHealth) ok() {
	h.mu.Lock()
	h.failingAt = time.Time{}
	h.lastErr = nil
	h.mu.Unlock()
}

func (h *produceHealth) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.failingAt.IsZero() && time.Since(h.failingAt) > unhealthyAfter {
		return errors.New("producing has failed since " + h.failingAt.UTC().Format(time.RFC3339) + ": " + h.lastErr.Error())
	}
	return nil
}

// readerCollector exposes the consumer's lag and fetch requests.
type readerCollector struct {
	r            *consumer.Consumer
	lag, fetches *prometheus.Desc
}

func newReaderCollector(r *consumer.Consumer) prometheus.Collector {
	return &readerCollector{r: r,
		lag: prometheus.NewDesc("pixelstream_enricher_consumer_lag_records",
			"Records between the consumer's positions and the ends of its partitions, as of each partition's latest fetch.", nil, nil),
		fetches: prometheus.NewDesc("pixelstream_enricher_consumer_fetches_total",
			"Fetch requests sent to the brokers (one per broker and round trip, for all its partitions): with records_total, the records per fetch, a cost the broker pays per request.", nil, nil),
	}
}

func (c *readerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag; ch <- c.fetches }

func (c *readerCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(c.r.Lag()))
	ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(c.r.Fetches()))
}

// uaCollector exposes the User-Agent cache's hits and misses.
type uaCollector struct {
	p            *device.Parser
	hits, misses *prometheus.Desc
}

func newUACollector(p *device.Parser) prometheus.Collector {
	return &uaCollector{p: p,
		hits:   prometheus.NewDesc("pixelstream_enricher_useragent_cache_hits_total", "User-Agent lookups served from the cache.", nil, nil),
		misses: prometheus.NewDesc("pixelstream_enricher_useragent_cache_misses_total", "User-Agent lookups parsed by uap-go.", nil, nil),
	}
}

func (c *uaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.hits; ch <- c.misses }

func (c *uaCollector) Collect(ch chan<- prometheus.Metric) {
	h, m := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(h))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(m))
}

// geoCollector exposes the build time of the loaded geo databases, so an
// alert can fire when a database is not being refreshed.
type geoCollector struct {
	r    *geo.Resolver
	desc *prometheus.Desc
}

func newGeoCollector(r *geo.Resolver) prometheus.Collector {
	return &geoCollector{r: r, desc: prometheus.NewDesc("pixelstream_enricher_geoip_build_timestamp_seconds",
		"Build time of the loaded MaxMind database, by database (city, asn).", []string{"database"}, nil)}
}

func (c *geoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *geoCollector) Collect(ch chan<- prometheus.Metric) {
	city, asn := c.r.BuildTimes()
	if !city.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(city.Unix()), "city")
	}
	if !asn.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(asn.Unix()), "asn")
	}
}
