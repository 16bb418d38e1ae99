package classify

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// benchUAs is a mix of the common case: browsers, one proxy, one bot.
var benchUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}

func BenchmarkAgentCached(b *testing.B) {
	c, _ := NewAgentClassifier(AgentConfig{})
	uas := make([][]byte, len(benchUAs))
	devs := make([]*device.Result, len(benchUAs))
	for i, ua := range benchUAs {
		uas[i], devs[i] = []byte(ua), parseUA(b, ua)
		var r AgentResult
		c.Classify(uas[i], devs[i], appleIP, &r)
	}
	ips := []netip.Addr{readerIP, appleIP}
	var r AgentResult
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Classify(uas[i%len(uas)], devs[i%len(devs)], ips[i&1], &r)
	}
}

func BenchmarkAgentCachedParallel(b *testing.B) {
	c, _ := NewAgentClassifier(AgentConfig{})
	dev := parseUA(b, benchUAs[0])
	ua := []byte(benchUAs[0])
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var r AgentResult
		for pb.Next() {
			c.Classify(ua, dev, readerIP, &r)
		}
	})
}

// Every call a new User-Agent: the verdict is computed (crawler list,
// token scan) and inserted, evicting once the cache is full. The device
// parse, which the enricher does anyway, is not included.
func BenchmarkAgentUncached(b *testing.B) {
	for _, kind := range []struct {
		name, format string
	}{
		{"browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.%d.0 Safari/537.36"},
		{"bot", "Mozilla/5.0 (compatible; SomeCrawler/%d.0; +https://example.com/bot)"},
	} {
		b.Run(kind.name, func(b *testing.B) {
			c, _ := NewAgentClassifier(AgentConfig{CacheSize: 4096})
			dev := parseUA(b, fmt.Sprintf(kind.format, 0))
			uas := make([][]byte, 1<<16)
			for i := range uas {
				uas[i] = fmt.Appendf(nil, kind.format, i)
			}
			var r AgentResult
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				c.Classify(uas[i%len(uas)], dev, readerIP, &r)
			}
		})
	}
}

func BenchmarkReferrer(b *testing.B) {
	for _, tc := range []struct{ name, ref, page string }{
		{"google", "https://www.google.com/", "example.com"},
		{"facebook_shim", "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2F", "example.com"},
		{"internal", "https://www.example.com/blog/post", "example.com"},
		{"internal_psl", "https://blog.example.co.uk/post", "shop.example.co.uk"},
		{"unknown", "https://someones-blog.example.net/2026/11/pixels", "example.com"},
		{"google_term", "https://www.google.com/search?q=running+shoes&hl=en", "example.com"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			host := hostOf(tc.ref)
			referrers() // build the table outside the timing
			var r ReferrerResult
			b.ReportAllocs()
			for b.Loop() {
				Referrer(tc.ref, host, tc.page, &r)
			}
		})
	}
}

func BenchmarkChannel(b *testing.B) {
	for _, tc := range []struct {
		name string
		in   ChannelInput
	}{
		{"click_id", ChannelInput{ClickIDParam: "gclid"}},
		{"utm", ChannelInput{UTMSource: "Facebook", UTMMedium: "CPC"}},
		{"referrer", ChannelInput{ReferrerMedium: MediumSearch, ReferrerSource: "Google"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			referrers()
			b.ReportAllocs()
			for b.Loop() {
				_ = Channel(tc.in)
			}
		})
	}
}

func BenchmarkEmailEvent(b *testing.B) {
	params := map[string]string{"ecid": "c1", "erid": "r1"}
	get := func(n string) (string, bool) { v, ok := params[n]; return v, ok }
	agent := &AgentResult{EmailProxy: EmailProxyGmail}
	b.ReportAllocs()
	for b.Loop() {
		EmailEvent("pageview", get, agent)
	}
}
