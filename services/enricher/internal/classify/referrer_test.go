package classify

import (
	"testing"
	"unicode/utf8"

	"github.com/pixelstream/pixelstream/services/enricher/internal/campaign"
)

type refCase struct {
	name   string
	ref    string // the referrer URL, as the site passes it in ref=
	page   string // the page URL
	medium string
	source string
	term   string
}

var refCases = []refCase{
	// Search engines, with and without the term.
	{"google origin only", "https://www.google.com/", "https://shop.example.com/p/1", MediumSearch, "Google", ""},
	{"google with q", "https://www.google.com/search?q=running+shoes&hl=en&client=safari", "https://shop.example.com/", MediumSearch, "Google", "running shoes"},
	{"google country", "https://www.google.co.uk/search?q=caf%C3%A9+near+me", "https://example.com/", MediumSearch, "Google", "café near me"},
	{"google images path", "https://www.google.de/imgres?imgurl=x&q=katze", "https://example.com/", MediumSearch, "Google Images", "katze"},
	{"google url redirect", "https://www.google.com/url?q=https://example.com/&sa=t", "https://example.org/", MediumSearch, "Google", ""},
	{"google app android", "android-app://com.google.android.googlequicksearchbox/", "https://example.com/", MediumSearch, "Google", ""},
	{"bing with q", "https://www.bing.com/search?q=pixel+tracking&form=QBLH", "https://example.com/", MediumSearch, "Bing", "pixel tracking"},
	{"duckduckgo", "https://duckduckgo.com/", "https://example.com/", MediumSearch, "DuckDuckGo", ""},
	{"duckduckgo q", "https://duckduckgo.com/?q=self+hosted+analytics&ia=web", "https://example.com/", MediumSearch, "DuckDuckGo", "self hosted analytics"},
	{"yahoo p", "https://search.yahoo.com/search?p=weather+berlin&fr=yfp-t", "https://example.com/", MediumSearch, "Yahoo!", "weather berlin"},
	{"yandex text", "https://yandex.ru/search/?text=%D0%BF%D0%B8%D0%BA%D1%81%D0%B5%D0%BB%D1%8C&lr=213", "https://example.com/", MediumSearch, "Yandex", "пиксель"},
	{"baidu wd", "https://www.baidu.com/s?ie=utf-8&wd=%E5%83%8F%E7%B4%A0", "https://example.com/", MediumSearch, "Baidu", "像素"},
	{"ecosia", "https://www.ecosia.org/search?method=index&q=trees", "https://example.com/", MediumSearch, "Ecosia", "trees"},
	// Social networks and their link shims.
	{"facebook", "https://www.facebook.com/", "https://example.com/", MediumSocial, "Facebook", ""},
	{"l.facebook.com", "https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2F&h=AT0", "https://example.com/", MediumSocial, "Facebook", ""},
	{"lm.facebook.com", "https://lm.facebook.com/", "https://example.com/", MediumSocial, "Facebook", ""},
	{"t.co", "https://t.co/AbCdEf123", "https://example.com/", MediumSocial, "Twitter", ""},
	{"x.com", "https://x.com/", "https://example.com/", MediumSocial, "Twitter", ""},
	{"linkedin", "https://www.linkedin.com/", "https://example.com/", MediumSocial, "LinkedIn", ""},
	{"linkedin app", "android-app://com.linkedin.android/", "https://example.com/", MediumSocial, "LinkedIn", ""},
	{"reddit", "https://www.reddit.com/", "https://example.com/", MediumSocial, "Reddit", ""},
	{"old reddit", "https://old.reddit.com/r/golang/comments/abc/", "https://example.com/", MediumSocial, "Reddit", ""},
	{"instagram", "https://l.instagram.com/?u=https%3A%2F%2Fexample.com", "https://example.com/", MediumSocial, "Instagram", ""},
	{"youtube", "https://www.youtube.com/", "https://example.com/", MediumSocial, "Youtube", ""},
	{"youtube mobile", "https://m.youtube.com/watch?v=dQw4w9WgXcQ", "https://example.com/", MediumSocial, "Youtube", ""},
	{"tiktok supplement", "https://www.tiktok.com/", "https://example.com/", MediumSocial, "TikTok", ""},
	{"hacker news", "https://news.ycombinator.com/", "https://example.com/", MediumSocial, "Hacker News", ""},
	// Webmail.
	{"gmail web", "https://mail.google.com/", "https://example.com/", MediumEmail, "Gmail", ""},
	{"gmail android", "android-app://com.google.android.gm/", "https://example.com/", MediumEmail, "Gmail", ""},
	{"outlook.com", "https://outlook.live.com/", "https://example.com/", MediumEmail, "Outlook.com", ""},
	{"outlook office", "https://outlook.office.com/", "https://example.com/", MediumEmail, "Outlook.com", ""},
	{"yahoo mail", "https://mail.yahoo.com/", "https://example.com/", MediumEmail, "Yahoo! Mail", ""},
	// Ad servers.
	{"doubleclick", "https://ad.doubleclick.net/ddm/clk/123", "https://example.com/", MediumPaid, "Doubleclick", ""},
	{"taboola", "https://trc.taboola.com/", "https://example.com/", MediumPaid, "Taboola", ""},
	// Known sites without a marketing medium.
	{"google support", "https://support.google.com/", "https://example.com/", MediumUnknown, "Google", ""},
	{"wikipedia", "https://en.wikipedia.org/wiki/Web_analytics", "https://example.com/", MediumUnknown, "Wikipedia", ""},
	// Internal.
	{"same host", "https://example.com/blog/", "https://example.com/pricing", MediumInternal, "", ""},
	{"www vs apex", "https://www.example.com/", "https://example.com/", MediumInternal, "", ""},
	{"sibling subdomain", "https://blog.example.co.uk/post", "https://shop.example.co.uk/", MediumInternal, "", ""},
	{"google.com is internal for google.com", "https://www.google.com/search?q=x", "https://about.google.com/", MediumInternal, "", ""},
	{"public suffix siblings are not", "https://alice.github.io/", "https://bob.github.io/", MediumUnknown, "", ""},
	{"co.uk siblings are not", "https://other.co.uk/", "https://example.co.uk/", MediumUnknown, "", ""},
	// Unknown and direct.
	{"unknown blog", "https://someones-blog.example.net/2026/11/pixels", "https://example.com/", MediumUnknown, "", ""},
	{"ip address", "http://192.0.2.10:8080/", "https://example.com/", MediumUnknown, "", ""},
	{"no host", "not a url", "https://example.com/", MediumUnknown, "", ""},
	{"empty", "", "https://example.com/", MediumDirect, "", ""},
	{"no page host", "https://example.com/", "", MediumUnknown, "", ""},
}

// The inputs come from the real campaign parser, as in the enricher.
func TestReferrer(t *testing.T) {
	var res campaign.Result
	for _, tc := range refCases {
		t.Run(tc.name, func(t *testing.T) {
			q := "url=" + urlEncode(tc.page) + "&ref=" + urlEncode(tc.ref)
			campaign.Parse([]byte(q), nil, &res)
			var got ReferrerResult
			Referrer(res.ReferrerURL, res.ReferrerHost, res.PageHost, &got)
			want := ReferrerResult{Medium: tc.medium, Source: tc.source, Term: tc.term}
			if got != want {
				t.Errorf("ref %q page %q (host %q): got %+v, want %+v", res.ReferrerURL, res.PageURL, res.ReferrerHost, got, want)
			}
		})
	}
}

// A caller with only a URL gets the same answer as one passing the host.
func TestReferrerHostFromURL(t *testing.T) {
	var a, b ReferrerResult
	Referrer("https://WWW.Bing.com:443/search?q=go", "", "example.com", &a)
	Referrer("https://www.bing.com/search?q=go", "www.bing.com", "example.com", &b)
	if a != b || a.Source != "Bing" || a.Term != "go" {
		t.Fatalf("from URL %+v, with host %+v", a, b)
	}
	Referrer("https://[2001:db8::1]/x", "", "example.com", &a)
	if a.Medium != MediumUnknown {
		t.Fatalf("IPv6 literal: %+v", a)
	}
}

func TestSearchTermLimits(t *testing.T) {
	long := make([]byte, 0, 3*MaxTermLen)
	for len(long) < 2*MaxTermLen {
		long = append(long, "%C3%A9"...) // é, two bytes each
	}
	var got ReferrerResult
	Referrer("https://www.google.com/search?q="+string(long), "www.google.com", "example.com", &got)
	if len(got.Term) > MaxTermLen || !utf8.ValidString(got.Term) || got.Term == "" {
		t.Fatalf("term of %d bytes, valid %v", len(got.Term), utf8.ValidString(got.Term))
	}
	// A legacy-charset term (GBK) comes out as valid UTF-8.
	Referrer("https://www.baidu.com/s?wd=%CF%F1%CB%D8", "www.baidu.com", "example.com", &got)
	if !utf8.ValidString(got.Term) || got.Term == "" {
		t.Fatalf("GBK term %q", got.Term)
	}
}

func TestReferrerDataLoads(t *testing.T) {
	tab := referrers()
	if len(tab.hosts) < 1500 {
		t.Fatalf("only %d hosts", len(tab.hosts))
	}
	for host, e := range tab.hosts {
		if _, ok := mediumRank[e.medium]; !ok || e.source == "" {
			t.Fatalf("%s: %+v", host, e)
		}
	}
	for _, bad := range []string{``, `{}`, `{"a.com":{"medium":"tv","source":"X"}}`, `{"a.com":{"medium":"search","source":""}}`, `[`} {
		if _, err := parseReferrers([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReferrerNoAllocs(t *testing.T) {
	var out ReferrerResult
	for _, u := range []string{"https://www.google.com/", "https://l.facebook.com/l.php?u=x", "https://example.com/a", "https://blog.example.net/"} {
		host := hostOf(u)
		if n := testing.AllocsPerRun(100, func() { Referrer(u, host, "example.com", &out) }); n != 0 {
			t.Errorf("%s: %v allocs", u, n)
		}
	}
}

// urlEncode percent-encodes a value for a query string.
func urlEncode(s string) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)*3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
