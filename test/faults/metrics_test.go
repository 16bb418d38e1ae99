package faults

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metrics is one scrape of a Prometheus text endpoint: series
// ("name{label=\"v\"}" exactly as exposed) to value.
type metrics map[string]float64

// scrape reads a /metrics endpoint; an unreachable endpoint fails the test.
func scrape(t *testing.T, url string) metrics {
	t.Helper()
	m, err := tryScrape(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	return m
}

func tryScrape(url string) (metrics, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// get returns one series, e.g. get(`pixelstream_edge_dropped_total{reason="spool_full"}`),
// or 0 when it is not exposed.
func (m metrics) get(series string) float64 { return m[series] }

// sum adds every series of the metric name, whatever its labels.
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// has reports whether any series of the metric name is exposed.
func (m metrics) has(name string) bool {
	for k := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

// nonZero lists the series of name with a value other than 0, for reports.
func (m metrics) nonZero(name string) string {
	var out []string
	for k, v := range m {
		if (k == name || strings.HasPrefix(k, name+"{")) && v != 0 {
			out = append(out, fmt.Sprintf("%s=%g", strings.TrimPrefix(k, name), v))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

const (
	mDropped     = "pixelstream_edge_dropped_total"
	mSpooled     = "pixelstream_edge_spooled_total"
	mReplayed    = "pixelstream_edge_spool_replayed_total"
	mSpoolBytes  = "pixelstream_edge_spool_bytes"
	mQueueLength = "pixelstream_edge_queue_length"
	mPublished   = "pixelstream_edge_published_total"

	mEnricherRecords = "pixelstream_enricher_records_total"
)

// edgeSummary is the one line of edge metrics a test reports.
func edgeSummary(m metrics) string {
	return fmt.Sprintf("published=%g spooled=%g replayed=%g spool_bytes=%g dropped[%s]",
		m.sum(mPublished), m.sum(mSpooled), m.sum(mReplayed), m.sum(mSpoolBytes), m.nonZero(mDropped))
}
