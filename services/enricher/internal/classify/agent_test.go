package classify

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// Addresses used below: 17.58.0.0/16 is Apple's; 203.0.113.0/24 is a
// documentation range standing in for a reader's ISP.
var (
	appleIP    = netip.MustParseAddr("17.58.101.7")
	appleIPv6  = netip.MustParseAddr("2620:149:a44::17")
	mappedIP   = netip.MustParseAddr("::ffff:17.58.101.7")
	readerIP   = netip.MustParseAddr("203.0.113.9")
	readerIPv6 = netip.MustParseAddr("2001:db8::1")
)

type agentCase struct {
	name  string
	ua    string
	ip    netip.Addr
	want  AgentResult
	devTy string // expected device.Result.DeviceType, "" to skip
}

var human = AgentResult{}

func bot(name string) AgentResult { return AgentResult{IsBot: true, BotName: name} }

// Real User-Agents, as sent by the clients named.
var agentCases = []agentCase{
	// Desktop browsers.
	{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", readerIP, human, device.TypeDesktop},
	{"chrome mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", readerIP, human, device.TypeDesktop},
	{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", readerIP, human, device.TypeDesktop},
	{"firefox ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", readerIP, human, device.TypeDesktop},
	{"safari mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", readerIP, human, device.TypeDesktop},
	// Safari on a Mac on Apple's own network is still a person.
	{"safari mac from apple", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", appleIP, human, device.TypeDesktop},
	{"edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", readerIP, human, device.TypeDesktop},
	{"opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", readerIP, human, device.TypeDesktop},
	{"chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", readerIP, human, device.TypeDesktop},
	{"yandex browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.6.0.0 Safari/537.36", readerIP, human, device.TypeDesktop},
	{"ie11", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", readerIP, human, device.TypeDesktop},
	{"outlook desktop", "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", readerIP, human, ""},
	// Mobile browsers.
	{"iphone safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", readerIP, human, device.TypeMobile},
	{"ipad safari", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", readerIP, human, device.TypeTablet},
	{"chrome android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", readerIP, human, device.TypeMobile},
	{"samsung internet", "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", readerIP, human, device.TypeMobile},
	{"chrome ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", readerIP, human, device.TypeMobile},
	{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", readerIP, human, device.TypeMobile},
	// In-app browsers and web views.
	{"facebook ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.36.108;FBBV/614487620;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/616474046]", readerIP, human, device.TypeMobile},
	{"facebook android", "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/472.0.0.43.109;]", readerIP, human, device.TypeMobile},
	{"instagram ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 339.0.3.12.91 (iPhone13,2; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 618053402; IABMV/1)", readerIP, human, device.TypeMobile},
	{"android webview", "Mozilla/5.0 (Linux; Android 12; Pixel 6 Build/SD1A.210817.023; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/94.0.4606.71 Mobile Safari/537.36", readerIP, human, device.TypeMobile},
	{"google app ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/343.0.695551749 Mobile/15E148 Safari/604.1", readerIP, human, device.TypeMobile},
	{"linkedin app ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.5953", readerIP, human, device.TypeMobile},
	{"ios wkwebview", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", readerIP, human, device.TypeMobile},

	// Mail image proxies: never bots, whatever the bot lists say.
	{"gmail proxy", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", netip.MustParseAddr("66.249.84.1"), AgentResult{EmailProxy: EmailProxyGmail}, device.TypeOther},
	{"yahoo proxy", "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", netip.MustParseAddr("98.136.0.1"), AgentResult{EmailProxy: EmailProxyYahoo}, device.TypeOther},
	// Apple Mail Privacy Protection: an MPP User-Agent from Apple's space.
	{"apple mpp bare", "Mozilla/5.0", appleIP, AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}, ""},
	{"apple mpp mac mail", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", appleIP, AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}, ""},
	{"apple mpp ios mail", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", appleIP, AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}, ""},
	{"apple mpp ipv6", "Mozilla/5.0", appleIPv6, AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}, ""},
	{"apple mpp ipv4-mapped", "Mozilla/5.0", mappedIP, AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}, ""},
	// The same User-Agents elsewhere: Apple Mail with MPP off is a person.
	{"apple mail no mpp", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", readerIP, human, device.TypeDesktop},
	{"bare mozilla elsewhere", "Mozilla/5.0", readerIPv6, human, ""},
	{"bare mozilla no ip", "Mozilla/5.0", netip.Addr{}, human, ""},
	// Google's delivery-time scanner, often mistaken for Outlook.com's proxy.
	{"gmail delivery scanner", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0", netip.MustParseAddr("108.177.2.32"), bot(botEmailScanner), ""},

	// Search engine and SEO crawlers.
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", readerIP, bot("Googlebot"), device.TypeBot},
	{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", readerIP, bot("Googlebot"), device.TypeBot},
	{"bingbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", readerIP, bot("bingbot"), device.TypeBot},
	{"duckduckbot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", readerIP, bot("DuckDuckBot"), device.TypeBot},
	{"yandexbot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", readerIP, bot("YandexBot"), device.TypeBot},
	{"baiduspider", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", readerIP, bot("Baiduspider"), device.TypeBot},
	{"applebot from apple", "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)", appleIP, bot("Applebot"), device.TypeBot},
	{"ahrefsbot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", readerIP, bot("AhrefsBot"), device.TypeBot},
	{"semrushbot", "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", readerIP, bot("SemrushBot"), device.TypeBot},
	{"petalbot", "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)", readerIP, bot("PetalBot"), ""},
	// AI crawlers.
	{"gptbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", readerIP, bot("GPTBot"), ""},
	{"claudebot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)", readerIP, bot("ClaudeBot"), ""},
	// Link previews.
	{"facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", readerIP, bot("facebookexternalhit"), device.TypeBot},
	{"twitterbot", "Twitterbot/1.0", readerIP, bot("Twitterbot"), device.TypeBot},
	{"slackbot", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", readerIP, bot("Slackbot"), device.TypeBot},
	{"linkedinbot", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", readerIP, bot("LinkedInBot"), ""},
	{"whatsapp preview", "WhatsApp/2.23.20.0", readerIP, bot("WhatsApp"), ""},
	// Headless browsers.
	{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36", readerIP, bot("HeadlessChrome"), ""},
	{"phantomjs", "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1", readerIP, bot("PhantomJS"), ""},
	// HTTP libraries.
	{"curl", "curl/8.5.0", readerIP, bot("curl"), ""},
	{"python-requests", "python-requests/2.31.0", readerIP, bot("python-requests"), ""},
	{"go http client", "Go-http-client/1.1", readerIP, bot("Go-http-client"), ""},
	{"go http2 client", "Go-http-client/2.0", readerIP, bot("Go-http-client"), ""},
	{"java", "Java/17.0.2", readerIP, bot("Java"), ""},
	{"empty", "", readerIP, bot(BotUnknown), ""},
	// Uptime monitors.
	{"uptimerobot", "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", readerIP, bot("UptimeRobot"), ""},
	{"pingdom", "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", readerIP, bot("Pingdom"), ""},
	{"pingdom pingbot", "Mozilla/5.0 (compatible; pingbot/2.0; +http://www.pingdom.com/)", readerIP, bot("Pingdom"), ""},
	{"statuscake", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/61.0.3163.100 Safari/537.36 StatusCake", readerIP, bot("StatusCake"), ""},
	{"site24x7", "Site24x7", readerIP, bot("Site24x7"), ""},
	{"better uptime", "Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/83.0.4103.61 Safari/537.36", readerIP, bot("BetterUptime"), ""},
	// A crawler on no list of ours: uap-core's "Spider" device decides.
	{"unlisted crawler", "Mozilla/5.0 (compatible; SomeNewCrawler/1.0; +https://example.com/bot)", readerIP, bot("SomeNewCrawler"), device.TypeBot},
}

func TestAgent(t *testing.T) {
	c, err := NewAgentClassifier(AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	nUA := map[string]bool{}
	for _, tc := range agentCases {
		nUA[tc.ua] = true
		t.Run(tc.name, func(t *testing.T) {
			dev := parseUA(t, tc.ua)
			if tc.devTy != "" && dev.DeviceType != tc.devTy {
				t.Errorf("device type %q, want %q (browser %q, device %q)", dev.DeviceType, tc.devTy, dev.BrowserFamily, dev.DeviceFamily)
			}
			// Twice: the second answer comes from the cache and must agree.
			for round := range 2 {
				var got AgentResult
				c.Classify([]byte(tc.ua), dev, tc.ip, &got)
				if got != tc.want {
					t.Errorf("round %d: got %+v, want %+v", round, got, tc.want)
				}
			}
		})
	}
	if len(nUA) < 30 {
		t.Errorf("only %d distinct User-Agents", len(nUA))
	}
}

func TestAgentPackageFunc(t *testing.T) {
	ua := "Mozilla/5.0"
	var got AgentResult
	Agent([]byte(ua), parseUA(t, ua), appleIP, &got)
	if got.EmailProxy != EmailProxyAppleMPP || !got.MachineOpen || got.IsBot {
		t.Fatalf("got %+v", got)
	}
	hits, misses := AgentStats()
	if hits+misses == 0 {
		t.Fatal("AgentStats counts nothing")
	}
}

// The IP-dependent part is computed outside the cache: one cached
// User-Agent gives different answers for different addresses.
func TestAgentMPPNotCachedPerIP(t *testing.T) {
	c, _ := NewAgentClassifier(AgentConfig{})
	ua := []byte("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)")
	dev := parseUA(t, string(ua))
	var a, b, a2 AgentResult
	c.Classify(ua, dev, appleIP, &a)
	c.Classify(ua, dev, readerIP, &b)
	c.Classify(ua, dev, appleIP, &a2)
	if a.EmailProxy != EmailProxyAppleMPP || b.EmailProxy != "" || a2 != a {
		t.Fatalf("apple %+v, reader %+v, apple again %+v", a, b, a2)
	}
	if hits, misses := c.Stats(); hits != 2 || misses != 1 {
		t.Fatalf("hits %d misses %d, want 2 and 1", hits, misses)
	}
}

func TestAgentCustomApplePrefixes(t *testing.T) {
	// An operator adds a Private Relay egress range (documentation prefix
	// here) and keeps Apple's own space.
	relay := netip.MustParsePrefix("198.51.100.0/24")
	c, err := NewAgentClassifier(AgentConfig{AppleProxyPrefixes: append([]netip.Prefix{relay}, DefaultAppleProxyPrefixes...)})
	if err != nil {
		t.Fatal(err)
	}
	var got AgentResult
	c.Classify([]byte("Mozilla/5.0"), nil, netip.MustParseAddr("198.51.100.20"), &got)
	if got.EmailProxy != EmailProxyAppleMPP {
		t.Fatalf("relay address: %+v", got)
	}
	c.Classify([]byte("Mozilla/5.0"), nil, appleIP, &got)
	if got.EmailProxy != EmailProxyAppleMPP {
		t.Fatalf("apple address: %+v", got)
	}
	// An empty, non-nil list turns MPP detection off.
	off, err := NewAgentClassifier(AgentConfig{AppleProxyPrefixes: []netip.Prefix{}})
	if err != nil {
		t.Fatal(err)
	}
	off.Classify([]byte("Mozilla/5.0"), nil, appleIP, &got)
	if got != human {
		t.Fatalf("MPP off: %+v", got)
	}
}

func TestNewAgentClassifierErrors(t *testing.T) {
	if _, err := NewAgentClassifier(AgentConfig{CacheSize: -1}); err == nil {
		t.Error("negative cache size accepted")
	}
	if _, err := NewAgentClassifier(AgentConfig{AppleProxyPrefixes: []netip.Prefix{{}}}); err == nil {
		t.Error("invalid prefix accepted")
	}
}

// A nil device result still recognizes the proxies and listed bots.
func TestAgentNilDevice(t *testing.T) {
	c, _ := NewAgentClassifier(AgentConfig{})
	for ua, want := range map[string]AgentResult{
		"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)":                       {EmailProxy: EmailProxyGmail},
		"YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html":                                        {EmailProxy: EmailProxyYahoo},
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                        bot("Googlebot"),
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36": human,
	} {
		var got AgentResult
		c.Classify([]byte(ua), nil, readerIP, &got)
		if got != want {
			t.Errorf("%.40s: got %+v, want %+v", ua, got, want)
		}
	}
}

// The cache is bounded and keyed like the device parser: a User-Agent
// longer than device.MaxUALength is cut to it.
func TestAgentCacheBounded(t *testing.T) {
	c, _ := NewAgentClassifier(AgentConfig{CacheSize: 64})
	var r AgentResult
	for i := range 1000 {
		c.Classify(fmt.Appendf(nil, "curl/8.%d.0", i), nil, readerIP, &r)
		if !r.IsBot || r.BotName != "curl" {
			t.Fatalf("curl/8.%d.0: %+v", i, r)
		}
	}
	if n := c.cache.Len(); n > 64+16 {
		t.Fatalf("cache holds %d entries, limit 64", n)
	}
	long := []byte("curl/8.5.0 " + strings.Repeat("x", 2*device.MaxUALength))
	c.Classify(long, nil, readerIP, &r)
	c.Classify(long[:device.MaxUALength], nil, readerIP, &r)
	if hits, _ := c.Stats(); hits != 1 {
		t.Fatalf("cut User-Agent not shared with its prefix: %d hits", hits)
	}
}

// Frequently seen User-Agents survive a flood of one-offs (CLOCK).
func TestAgentCacheKeepsHotEntries(t *testing.T) {
	c, _ := NewAgentClassifier(AgentConfig{CacheSize: 256})
	hot := []byte("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
	var r AgentResult
	for i := range 5000 {
		c.Classify(hot, nil, readerIP, &r)
		c.Classify(fmt.Appendf(nil, "python-requests/2.%d", i), nil, readerIP, &r)
	}
	_, before := c.Stats()
	c.Classify(hot, nil, readerIP, &r)
	if _, after := c.Stats(); after != before {
		t.Fatal("hot User-Agent was evicted")
	}
}

func TestAgentConcurrent(t *testing.T) {
	c, _ := NewAgentClassifier(AgentConfig{CacheSize: 128})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r AgentResult
			for i := range 2000 {
				ua := agentCases[(i+w)%len(agentCases)]
				c.Classify([]byte(ua.ua), nil, ua.ip, &r)
				c.Classify(fmt.Appendf(nil, "Go-http-client/%d.%d", w, i), nil, readerIP, &r)
			}
		}()
	}
	wg.Wait()
}

func TestIsMPPUserAgent(t *testing.T) {
	for ua, want := range map[string]bool{
		"Mozilla/5.0":   true,
		" Mozilla/5.0 ": true,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)":                      true,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)":                      true,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148": true,
		"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148":          true,
		// Browsers add their own tokens.
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15":                   false,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1": false,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.5953":   false,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148":                                  false,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)":                                                        false,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)":                                                                                         false,
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15":                                                                    false,
		"Mozilla/4.0": false,
		"":            false,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5": false,
	} {
		if got := isMPPUserAgent([]byte(ua)); got != want {
			t.Errorf("%q: %v, want %v", ua, got, want)
		}
	}
}

func TestPatternName(t *testing.T) {
	for pattern, want := range map[string]string{
		`Googlebot\/`:           "Googlebot",
		`[pP]ingdom`:            "Pingdom",
		`[cC]laude[bB]ot`:       "ClaudeBot",
		`Ahrefs(Bot|SiteAudit)`: "AhrefsBot",
		`^curl`:                 "curl",
		`AdsBot-Google([^-]|$)`: "AdsBot-Google",
		`yandex\.com\/bots`:     "yandex.com/bots",
		`.*`:                    BotUnknown,
		`(`:                     BotUnknown,
	} {
		if got := patternName(pattern); got != want {
			t.Errorf("%q: %q, want %q", pattern, got, want)
		}
	}
	// Every shipped pattern yields a usable name.
	for i, name := range patternNames() {
		if name == "" || len(name) > 64 {
			t.Errorf("pattern %d: name %q", i, name)
		}
	}
}

func TestKnownBotTokensLowerCase(t *testing.T) {
	for _, b := range knownBots {
		if b.token != strings.ToLower(b.token) || b.name == "" {
			t.Errorf("token %q name %q", b.token, b.name)
		}
	}
}

func TestPreload(t *testing.T) {
	Preload()
	Preload()
	if referrers() == nil || len(patternNames()) == 0 || defaultAgents() == nil {
		t.Fatal("Preload built nothing")
	}
}
