package enrich

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/classify"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

// realSteps returns a constructor of the production per-record chain with
// real parsers, and the real GeoLite2 database when GEOIP_CITY_DB names it:
// each call gets its own Shared, the parsers are shared, as in the enricher.
func realSteps(t testing.TB) func() []Step {
	dev, err := device.New("", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := classify.NewAgentClassifier(classify.AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var r *geo.Resolver
	if path := os.Getenv("GEOIP_CITY_DB"); path != "" {
		if r, err = geo.Open(path, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
	}
	return chainOf(dev, ag, r)
}

// chainOf is the production per-record chain over dev, ag and r (nil: no
// geo): each call of the result gets its own Shared.
func chainOf(dev *device.Parser, ag *classify.AgentClassifier, r *geo.Resolver) func() []Step {
	return func() []Step {
		sh := &Shared{}
		steps := []Step{Basics, Campaign(sh)}
		if r != nil {
			steps = append(steps, Geo(r, sh))
		}
		return append(steps, Device(dev, sh), Classify(ag, sh), IPPolicy(IPTruncate))
	}
}

func enrichOne(t *testing.T, steps func() []Step, ua, ip, query, referer string) pageview.Pageview {
	t.Helper()
	s, _ := newStage()
	s.NewSteps = steps
	r := rawHit(ua)
	r.ClientIP = netip.MustParseAddr(ip)
	r.Query = []byte(query)
	r.Referer = []byte(referer)
	b := &pipeline.Batch{In: []kafka.Message{{Value: r.AppendProto(nil)}}}
	if err := s.Process(context.Background(), b); err != nil || b.Out[0].Topic != "pageviews.enriched" {
		t.Fatalf("err=%v topic=%s", err, b.Out[0].Topic)
	}
	var pv pageview.Pageview
	if err := json.Unmarshal(b.Out[0].Value, &pv); err != nil {
		t.Fatal(err)
	}
	return pv
}

func TestRealStepChain(t *testing.T) {
	steps := realSteps(t)
	geoOn := os.Getenv("GEOIP_CITY_DB") != ""
	tests := []struct {
		name, ua, ip, query, referer string
		check                        func(t *testing.T, pv pageview.Pageview)
	}{
		{"gmail open is an email open through a proxy, not a bot",
			"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "66.249.84.1",
			"key=demo&e=open&ecid=spring-sale&erid=r-42", "",
			func(t *testing.T, pv pageview.Pageview) {
				if pv.IsBot || pv.EmailProxy != "gmail" || pv.DeviceType != DeviceTypeEmailProxy || pv.EventType != "email_open" ||
					pv.Channel != "email" || pv.EmailCampaignID != "spring-sale" || pv.EmailRecipientID != "r-42" {
					t.Errorf("%+v", pv)
				}
				if geoOn && pv.GeoSource != "email_proxy" {
					t.Errorf("geo_source %q, want email_proxy", pv.GeoSource)
				}
			}},
		{"googlebot is flagged, kept",
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66.1", "key=demo", "",
			func(t *testing.T, pv pageview.Pageview) {
				if !pv.IsBot || pv.BotName != "Googlebot" || pv.DeviceType != "bot" {
					t.Errorf("%+v", pv)
				}
			}},
		{"paid search click on an iPhone",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
			"81.2.69.142", "key=demo&url=https%3A%2F%2Fshop.example%2Fp%3Fgclid%3DCj0KCQ&ref=https%3A%2F%2Fwww.google.com%2F", "",
			func(t *testing.T, pv pageview.Pageview) {
				if pv.IsBot || pv.Channel != "paid_search" || pv.ReferrerMedium != "search" || pv.ReferrerSource != "Google" ||
					pv.DeviceType != "mobile" || pv.ClickPlatform != "google_ads" {
					t.Errorf("%+v", pv)
				}
				if geoOn && (pv.GeoCountryCode != "GB" || pv.GeoCity != "Gamlingay" || pv.GeoSource != "ip") {
					t.Errorf("geo %s %s %s", pv.GeoCountryCode, pv.GeoCity, pv.GeoSource)
				}
			}},
		{"organic social from the referrer header only",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"83.208.93.244", "key=demo&ref=https%3A%2F%2Fl.facebook.com%2F", "https://shop.example/",
			func(t *testing.T, pv pageview.Pageview) {
				if pv.Channel != "organic_social" || pv.PageHost != "shop.example" || pv.ReferrerMedium != "social" {
					t.Errorf("%+v", pv)
				}
			}},
		{"direct",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", "1.1.1.1",
			"key=demo&url=https%3A%2F%2Fshop.example%2F", "",
			func(t *testing.T, pv pageview.Pageview) {
				if pv.Channel != "direct" || pv.ReferrerMedium != "direct" || pv.DeviceType != "desktop" {
					t.Errorf("%+v", pv)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, enrichOne(t, steps, tc.ua, tc.ip, tc.query, tc.referer))
		})
	}
}

// BenchmarkRealChain measures a batch through every step with cached
// parsers: the enricher's CPU cost per record, Kafka aside. ns/record is
// wall time, so workers=2 against workers=1 is what the second core buys.
func BenchmarkRealChain(b *testing.B) {
	newSteps := realSteps(b)
	r := rawHit("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1")
	r.Query = []byte("key=demo&url=https%3A%2F%2Fshop.example%2Fp%3Futm_source%3Dgoogle%26utm_medium%3Dcpc%26gclid%3DCj0KCQ&ref=https%3A%2F%2Fwww.google.com%2F")
	v := r.AppendProto(nil)
	in := make([]kafka.Message, 500)
	for i := range in {
		in[i].Value = v
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s, _ := newStage()
			s.NewSteps, s.Workers = newSteps, workers
			benchBatches(b, s, in)
		})
	}
}

// BenchmarkRealChainUncachedUA is BenchmarkRealChain with a User-Agent
// never seen before on every record: the cost of a cache miss (uap-go's
// regexes and the crawler list), which the cache hit rate multiplies.
func BenchmarkRealChainUncachedUA(b *testing.B) {
	s, _ := newStage()
	s.NewSteps = realSteps(b)
	r := rawHit("")
	r.Query = []byte("key=demo&url=https%3A%2F%2Fshop.example%2Fp%3Futm_source%3Dgoogle%26utm_medium%3Dcpc%26gclid%3DCj0KCQ&ref=https%3A%2F%2Fwww.google.com%2F")
	batch := &pipeline.Batch{}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		r.UserAgent = fmt.Appendf(r.UserAgent[:0], "Mozilla/5.0 (Linux; Android 14; SM-S%d) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.%d.104 Mobile Safari/537.36", n, n)
		batch.Reset()
		batch.In = append(batch.In, kafka.Message{Value: r.AppendProto(nil)})
		_ = s.Process(context.Background(), batch)
	}
}
