package classify

import (
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
)

// Referrer mediums, the values of ReferrerResult.Medium. The first six are
// Snowplow's referer-parser mediums; direct is ours for "no referrer".
const (
	MediumSearch   = "search"   // a search engine's results
	MediumSocial   = "social"   // a social network or link shortener of one
	MediumEmail    = "email"    // a webmail client
	MediumPaid     = "paid"     // an ad server
	MediumInternal = "internal" // the site itself (same registrable domain)
	MediumUnknown  = "unknown"  // any other site, or a known site of no medium
	MediumDirect   = "direct"   // no referrer at all
)

// MaxTermLen bounds ReferrerResult.Term in bytes; longer terms are cut at a
// character boundary.
const MaxTermLen = 256

// ReferrerResult classifies where a visit came from.
type ReferrerResult struct {
	// Medium is one of the Medium constants.
	Medium string
	// Source names the referring service as the data set spells it
	// ("Google", "Facebook", "Twitter", "Gmail"); "" for internal, direct
	// and unlisted referrers (referrer_host still says who they are).
	Source string
	// Term is the search term when a search engine's referrer URL still
	// carries one (q=, p=, text=, wd=, ...). Google and most engines strip
	// it since 2011-2013, so it is usually "".
	Term string
}

// Referrer classifies a referrer: refURL and refHost are the referrer's URL
// and its lower-case host (campaign.Result.ReferrerURL and ReferrerHost),
// pageHost the lower-case host of the page (campaign.Result.PageHost).
//
// Rules, in order: no referrer → direct; the page's own host or registrable
// domain (www.example.com and shop.example.co.uk count as example.com and
// example.co.uk) → internal; a host in the data set, or a parent domain of
// it → that medium and source; otherwise unknown. Host lookups are map
// lookups. Nothing is allocated unless a search term is found.
func Referrer(refURL, refHost, pageHost string, out *ReferrerResult) {
	*out = ReferrerResult{}
	if refHost == "" {
		refHost = hostOf(refURL)
	}
	if refHost == "" {
		if strings.TrimSpace(refURL) == "" {
			out.Medium = MediumDirect
		} else {
			out.Medium = MediumUnknown // a referrer we cannot read a host from
		}
		return
	}
	if pageHost != "" && sameSite(refHost, pageHost) {
		out.Medium = MediumInternal
		return
	}
	e, ok := referrers().lookup(refHost, pathOf(refURL))
	if !ok {
		out.Medium = MediumUnknown
		return
	}
	out.Medium, out.Source = e.medium, e.source
	if e.medium == MediumSearch {
		out.Term = searchTerm(refURL, e.source)
	}
}

// sameSite reports whether hosts a and b are equal or share a registrable
// domain (eTLD+1 by the Public Suffix List). Two hosts with one registrable
// domain always share their last two labels, so differing last labels —
// nearly every external referrer — are rejected without the list.
func sameSite(a, b string) bool {
	a, b = strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	if a == b {
		return true
	}
	if lastLabels(a) != lastLabels(b) {
		return false
	}
	ra := registrableDomain(a)
	return ra != "" && ra == registrableDomain(b)
}

// maxSiteCache bounds siteCache; when full it is emptied and refilled,
// which is cheap and keeps the few hosts of the tracked sites hot.
const maxSiteCache = 4096

// siteCache memoizes registrableDomain. Internal referrers are among the
// most common (every click inside a site), and publicsuffix allocates
// twice per lookup (it first tries to parse the host as an IP address),
// while the hosts involved are the tracked sites' own: a handful.
var siteCache struct {
	sync.RWMutex
	m map[string]string
}

// registrableDomain returns host's eTLD+1, or "" if it has none (a public
// suffix itself, an IP address, an empty label).
func registrableDomain(host string) string {
	siteCache.RLock()
	d, ok := siteCache.m[host]
	siteCache.RUnlock()
	if ok {
		return d
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		d = ""
	}
	// The key and value are cloned: host is usually a slice of a record's
	// buffer, which the map must not keep alive.
	key := strings.Clone(host)
	d = key[len(key)-len(d):]
	siteCache.Lock()
	if siteCache.m == nil || len(siteCache.m) >= maxSiteCache {
		siteCache.m = make(map[string]string)
	}
	siteCache.m[key] = d
	siteCache.Unlock()
	return d
}

// lastLabels returns the last two dot-separated labels of host.
func lastLabels(host string) string {
	i := strings.LastIndexByte(host, '.')
	if i <= 0 {
		return host
	}
	if j := strings.LastIndexByte(host[:i], '.'); j >= 0 {
		return host[j+1:]
	}
	return host
}

// hostOf extracts the host of a URL that came without one (callers that
// pass campaign's ReferrerHost never need it). It lower-cases only when
// the host has upper-case letters, which allocates.
func hostOf(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	h := u[i+3:]
	if j := strings.IndexAny(h, "/?#"); j >= 0 {
		h = h[:j]
	}
	if j := strings.LastIndexByte(h, '@'); j >= 0 {
		h = h[j+1:]
	}
	if strings.HasPrefix(h, "[") {
		if j := strings.IndexByte(h, ']'); j >= 0 {
			return strings.ToLower(h[1:j])
		}
		return ""
	}
	if j := strings.IndexByte(h, ':'); j >= 0 {
		h = h[:j]
	}
	return strings.ToLower(h)
}

// pathOf returns the path of URL u ("" without one).
func pathOf(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	rest := u[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return ""
	}
	rest = rest[j:]
	if k := strings.IndexAny(rest, "?#"); k >= 0 {
		rest = rest[:k]
	}
	return rest
}

// searchTerm returns the search term in the query of a search engine's URL,
// trying the engine's parameters in order; "" if none carries one.
func searchTerm(u, source string) string {
	q := u
	if i := strings.IndexByte(q, '?'); i >= 0 {
		q = q[i+1:]
	} else {
		return ""
	}
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q = q[:i]
	}
	params, ok := searchTermParams[source]
	if !ok {
		params = defaultTermParams
	}
	for _, name := range params {
		if raw, ok := queryValue(q, name); ok && raw != "" {
			if t := cleanTerm(raw); t != "" {
				return t
			}
		}
	}
	return ""
}

// queryValue returns the raw (still encoded) value of the first parameter
// named name in query q.
func queryValue(q, name string) (string, bool) {
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// cleanTerm decodes a raw query value (percent escapes, "+" for space) in
// one pass with one allocation, collapses runs of white space, replaces
// invalid UTF-8 (engines that still send GBK or windows-1251) with U+FFFD,
// cuts at MaxTermLen and drops values that are not terms but URLs
// (Google's old /url?q=<target> redirect).
func cleanTerm(raw string) string {
	var b strings.Builder
	b.Grow(min(len(raw), MaxTermLen+utf8.UTFMax))
	space := false // a space is pending
	for i := 0; i < len(raw) && b.Len() < MaxTermLen; i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && isHexDigit(raw[i+1]) && isHexDigit(raw[i+2]):
			c = unhexDigit(raw[i+1])<<4 | unhexDigit(raw[i+2])
			i += 2
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	t := b.String()
	if !utf8.ValidString(t) {
		// Drop a character cut by the limit first, so that only genuinely
		// invalid bytes become U+FFFD.
		for j := len(t) - 1; j >= 0 && j >= len(t)-utf8.UTFMax; j-- {
			if utf8.RuneStart(t[j]) {
				if !utf8.FullRuneInString(t[j:]) {
					t = t[:j]
				}
				break
			}
		}
		t = strings.ToValidUTF8(t, "\uFFFD")
	}
	if len(t) > MaxTermLen { // U+FFFD is longer than the byte it replaces
		cut := MaxTermLen
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut--
		}
		t = t[:cut]
	}
	t = strings.TrimRight(t, " ")
	if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
		return ""
	}
	return t
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhexDigit(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
