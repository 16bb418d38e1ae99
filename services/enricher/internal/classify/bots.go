package classify

import (
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"

	agents "github.com/monperrus/crawler-user-agents"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// BotUnknown is AgentResult.BotName for a bot that no list names.
const BotUnknown = "unknown"

// knownBots gives the short, stable names of common bots, matched as
// case-insensitive substrings of the User-Agent in this order (specific
// tokens before the tokens they contain). Every token here also marks the
// User-Agent as a bot: that covers the uptime monitors, headless-browser
// frameworks and HTTP clients that crawler-user-agents v1.1.0 lacks
// (StatusCake, Site24x7, HetrixTools, updown.io, Checkly, Datadog and
// New Relic synthetics, Oh Dear, Better Stack, Puppeteer, Playwright,
// Java's and Postman's clients), while the crawler list remains the
// detector for everything else.
var knownBots = []struct{ token, name string }{
	// Search engines.
	{"adsbot-google-mobile", "AdsBot-Google-Mobile"},
	{"adsbot-google", "AdsBot-Google"},
	{"mediapartners-google", "Mediapartners-Google"},
	{"google-inspectiontool", "Google-InspectionTool"},
	{"storebot-google", "Storebot-Google"},
	{"googleother", "GoogleOther"},
	{"google-read-aloud", "Google-Read-Aloud"},
	{"googlebot", "Googlebot"},
	{"bingpreview", "BingPreview"},
	{"bingbot", "bingbot"},
	{"duckduckbot", "DuckDuckBot"},
	{"yandexbot", "YandexBot"},
	{"baiduspider", "Baiduspider"},
	{"applebot", "Applebot"},
	{"petalbot", "PetalBot"},
	{"yahoo! slurp", "Yahoo! Slurp"},
	// SEO tools and archives.
	{"ahrefsbot", "AhrefsBot"},
	{"ahrefssiteaudit", "AhrefsSiteAudit"},
	{"semrushbot", "SemrushBot"},
	{"mj12bot", "MJ12bot"},
	{"dotbot", "DotBot"},
	{"bytespider", "Bytespider"},
	{"ccbot", "CCBot"},
	// AI crawlers and fetchers.
	{"gptbot", "GPTBot"},
	{"chatgpt-user", "ChatGPT-User"},
	{"oai-searchbot", "OAI-SearchBot"},
	{"claudebot", "ClaudeBot"},
	{"claude-user", "Claude-User"},
	{"claude-searchbot", "Claude-SearchBot"},
	{"perplexitybot", "PerplexityBot"},
	{"perplexity-user", "Perplexity-User"},
	{"amazonbot", "Amazonbot"},
	{"meta-externalagent", "meta-externalagent"},
	{"meta-externalfetcher", "meta-externalfetcher"},
	// Link previews.
	{"facebookexternalhit", "facebookexternalhit"},
	{"facebookcatalog", "facebookcatalog"},
	{"twitterbot", "Twitterbot"},
	{"linkedinbot", "LinkedInBot"},
	{"slack-imgproxy", "Slack-ImgProxy"},
	{"slackbot", "Slackbot"},
	{"discordbot", "Discordbot"},
	{"telegrambot", "TelegramBot"},
	{"whatsapp", "WhatsApp"},
	{"skypeuripreview", "SkypeUriPreview"},
	{"pinterestbot", "Pinterestbot"},
	// Headless browsers and audits.
	{"headlesschrome", "HeadlessChrome"},
	{"phantomjs", "PhantomJS"},
	{"puppeteer", "Puppeteer"},
	{"playwright", "Playwright"},
	{"chrome-lighthouse", "Lighthouse"},
	// Uptime and synthetic monitoring.
	{"uptimerobot", "UptimeRobot"},
	{"pingdom", "Pingdom"},
	{"statuscake", "StatusCake"},
	{"site24x7", "Site24x7"},
	{"better uptime bot", "BetterUptime"},
	{"betterstack", "BetterStack"},
	{"better stack", "BetterStack"},
	{"uptime-kuma", "Uptime-Kuma"},
	{"freshpingbot", "Freshping"},
	{"hetrixtools", "HetrixTools"},
	{"updown.io", "updown.io"},
	{"checkly", "Checkly"},
	{"datadogsynthetics", "Datadog"},
	{"datadog/synthetics", "Datadog"},
	{"newrelicpinger", "NewRelicPinger"},
	{"ohdear", "OhDear"},
	{"uptimebot", "Uptimebot"},
	{"www.uptime.com", "Uptime.com"},
	// HTTP clients and scrapers.
	{"curl/", "curl"},
	{"wget", "Wget"},
	{"python-requests", "python-requests"},
	{"python-urllib", "Python-urllib"},
	{"aiohttp", "aiohttp"},
	{"python-httpx", "httpx"},
	{"go-http-client", "Go-http-client"},
	{"okhttp", "okhttp"},
	{"axios/", "axios"},
	{"node-fetch", "node-fetch"},
	{"apache-httpclient", "Apache-HttpClient"},
	{"java/", "Java"},
	{"libwww-perl", "libwww-perl"},
	{"scrapy", "Scrapy"},
	{"postmanruntime", "Postman"},
}

// emailScannerUA is fetched from Google's addresses seconds after a message
// is delivered, before anyone can have opened it (GMass's "false opens in
// Gmail"; open-source senders such as Keila and Groundhogg drop it). It
// is sometimes mistaken for Outlook.com's proxy. Its fake Edge 12 with a
// trailing "Mozilla/5.0" is unique, so it is matched exactly.
const emailScannerUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"

// botEmailScanner is the BotName of emailScannerUA.
const botEmailScanner = "EmailSecurityScanner"

// botVerdict decides whether ua (not a mail proxy) is a bot and names it.
// It runs on cache misses only: crawler-user-agents' matcher costs about a
// microsecond, and the lowercase copy and token scan a few more.
func botVerdict(ua string, dev *device.Result) (bool, string) {
	if strings.TrimSpace(ua) == "" {
		// Every browser sends a User-Agent; a pixel hit without one is a
		// script or a stripped proxy fetch. Flagged, not dropped.
		return true, BotUnknown
	}
	if ua == emailScannerUA {
		return true, botEmailScanner
	}
	lower := strings.ToLower(ua)
	for _, b := range knownBots {
		if strings.Contains(lower, b.token) {
			return true, b.name
		}
	}
	if name, ok := crawlerName(ua); ok {
		return true, name
	}
	if dev != nil && (dev.DeviceType == device.TypeBot || dev.DeviceFamily == "Spider") {
		if f := dev.BrowserFamily; f != "" && f != "Other" {
			return true, f
		}
		return true, BotUnknown
	}
	return false, ""
}

// crawlerName reports whether crawler-user-agents lists ua and, if so,
// names it after the most specific (longest-named) matching pattern.
func crawlerName(ua string) (string, bool) {
	if !agents.IsCrawler(ua) {
		return "", false
	}
	names := patternNames()
	best := ""
	for _, i := range agents.MatchingCrawlers(ua) {
		if i >= 0 && i < len(names) && len(names[i]) > len(best) {
			best = names[i]
		}
	}
	if best == "" {
		best = BotUnknown
	}
	return best, true
}

// patternNames holds a readable name for every crawler-user-agents pattern,
// derived once from the regular expression (see patternName).
var patternNames = sync.OnceValue(func() []string {
	names := make([]string, len(agents.Crawlers))
	for i, c := range agents.Crawlers {
		names[i] = patternName(c.Pattern)
	}
	return names
})

// patternName turns a crawler pattern into the literal it starts with:
// `Googlebot\/` → "Googlebot", `[pP]ingdom` → "Pingdom",
// `Ahrefs(Bot|SiteAudit)` → "AhrefsBot", `^curl` → "curl". It stops at
// the first construct that is not a literal (a wildcard, a repetition, a
// character class other than a case pair) and trims trailing punctuation.
// Deriving the name from the pattern, not from the matched text, keeps
// it stable across the User-Agent's spellings.
func patternName(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return BotUnknown
	}
	var b strings.Builder
	literalPrefix(re.Simplify(), &b)
	name := strings.TrimRightFunc(b.String(), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	name = strings.TrimLeftFunc(name, unicode.IsSpace)
	if len(name) < 3 {
		return BotUnknown
	}
	return name
}

// literalPrefix appends the literal text re starts with to b and reports
// whether re was consumed entirely (so that a caller may continue).
func literalPrefix(re *syntax.Regexp, b *strings.Builder) bool {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
		return true
	case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpEmptyMatch:
		return true
	case syntax.OpCharClass:
		// A case pair such as [pP] stands for one letter; prefer the
		// capital, which is how the product spells its name.
		r := re.Rune
		if len(r) == 4 && r[0] == r[1] && r[2] == r[3] && r[0] != r[2] &&
			unicode.ToLower(r[0]) == unicode.ToLower(r[2]) {
			b.WriteRune(unicode.ToUpper(re.Rune[0]))
			return true
		}
		return false
	case syntax.OpCapture:
		return literalPrefix(re.Sub[0], b)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !literalPrefix(sub, b) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		// Alternatives of a prefix, e.g. Ahrefs(Bot|SiteAudit): the first.
		literalPrefix(re.Sub[0], b)
		return false
	}
	return false
}
