package produce

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/lz4"
	"github.com/segmentio/kafka-go/compress/snappy"
)

// enrichedBatch returns n enriched records as the enricher writes them,
// varied the way a partition batch is (ids, pages, campaigns, devices).
func enrichedBatch(n int) []byte {
	var out []byte
	lat, lon := 48.8566, 2.3522
	uas := []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	}
	for i := range n {
		p := pageview.Pageview{
			EventID: fmt.Sprintf("019abc%02x-%04x-7%03x-8000-%012x", i%256, i*7919%65536, i%4096, i*104729), EventType: "pageview",
			ProjectID: "shop", APIKey: "bench-shop", ReceivedAt: fmt.Sprintf("2026-11-26T20:%02d:%02d.%09dZ", i/60%60, i%60, i*7777%1000000000),
			PageURL:  fmt.Sprintf("https://shop.example/products/%d?utm_source=newsletter&utm_medium=email&utm_campaign=c%d", i*31%5000, i%12),
			PageHost: "shop.example", PagePath: fmt.Sprintf("/products/%d", i*31%5000),
			ReferrerURL: "https://www.google.com/", ReferrerHost: "www.google.com",
			UTMSource: "newsletter", UTMMedium: "email", UTMCampaign: fmt.Sprintf("c%d", i%12),
			GeoCountryCode: "FR", GeoCountry: "France", GeoRegionCode: "IDF", GeoRegion: "Île-de-France", GeoCity: "Paris",
			GeoPostalCode: "75001", GeoLatitude: &lat, GeoLongitude: &lon, GeoTimezone: "Europe/Paris",
			UserAgent: uas[i%len(uas)], BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Windows", OSVersion: "10",
			DeviceType: "desktop", IP: fmt.Sprintf("81.%d.%d.0", i%200, i*13%250), IPMode: "truncate", GeoSource: "ip",
			ReferrerMedium: "email", Channel: "email", VisitorID: fmt.Sprintf("%016x", i*2654435761),
			SessionID: fmt.Sprintf("019abc%02x-0000-7000-8000-%012x", i%256, i*31), SessionSeq: i%5 + 1,
			AcceptLanguage: "fr-FR,fr;q=0.9,en;q=0.8", TrackingHost: "t.shop.example", EdgeInstance: "edge-1",
			SchemaVersion: pageview.SchemaVersion,
		}
		out = p.AppendJSON(out)
	}
	return out
}

// BenchmarkCompressEnriched compares the codecs on a batch of 256 enriched
// records: lz4 is 14 % of the enricher's CPU on the realistic mix
// (docs/performance.md). It backs keeping lz4: snappy at its faster level
// takes ~0.55× the time but writes ~2× the bytes to the broker, which on a
// shared box costs the broker what it saves the enricher.
func BenchmarkCompressEnriched(b *testing.B) {
	raw := enrichedBatch(256)
	for _, c := range []struct {
		name  string
		codec compress.Codec
	}{
		{"lz4", &lz4.Codec{}},
		{"snappy-default", &snappy.Codec{}},
		{"snappy-faster", &snappy.Codec{Compression: snappy.FasterCompression}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				out.Reset()
				w := c.codec.NewWriter(&out)
				if _, err := w.Write(raw); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw))/float64(out.Len()), "ratio")
		})
	}
}
