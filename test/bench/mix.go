package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"sort"
	"strings"
)

// MixConfig shapes the realistic traffic mix. The defaults are argued in
// docs/performance.md ("The realistic mix").
type MixConfig struct {
	Seed uint64
	// ZipfS is the exponent of the Zipf law over the ranked head of ~200
	// User-Agents (0.8: the top 10 carry ~36% of head draws, the top one
	// ~10%).
	ZipfS float64
	// NewVisitorProb is the chance that a pageview comes from a new visitor
	// (new IP and User-Agent); otherwise one of the RecentVisitors most
	// recent visitors views another page (0.35: ~2.9 pageviews per visit).
	NewVisitorProb float64
	RecentVisitors int
	// UniqueFrac of new visitors carry a User-Agent never seen before (an
	// in-app browser build, a device model), RareFrac one from a pool of
	// RarePool rare strings; the rest draw from the head.
	UniqueFrac, RareFrac float64
	RarePool             int
	// EmailFrac of hits are email opens (e=open) fetched by mail clients
	// and image proxies.
	EmailFrac float64
}

// DefaultMix is the mix every benchmark uses unless told otherwise.
func DefaultMix(seed uint64) MixConfig {
	return MixConfig{Seed: seed, ZipfS: 0.8, NewVisitorProb: 0.35, RecentVisitors: 50000,
		UniqueFrac: 0.03, RareFrac: 0.04, RarePool: 30000, EmailFrac: 0.08}
}

// Projects of the mix: API key, project id, page hosts, share of traffic.
var mixProjects = []struct {
	key, id string
	hosts   []string
	share   float64
}{
	{"bench-shop", "shop", []string{"shop.example.com", "www.shop.example.com"}, 0.5},
	{"bench-news", "news", []string{"news.example.org"}, 0.35},
	{"bench-saas", "saas", []string{"www.example.io", "app.example.io"}, 0.15},
}

// EdgeKeys is the -keys value the edge needs for the mix.
func EdgeKeys() string {
	var parts []string
	for _, p := range mixProjects {
		parts = append(parts, p.key+"="+p.id)
	}
	return strings.Join(parts, ",")
}

// Hit is one generated pixel request.
type Hit struct {
	Key, Project   string
	UA             string
	IP             netip.Addr
	Query          string // the pixel's query string, URL-encoded, without '?'
	PageURL        string // decoded page URL (empty for email opens)
	Referer        string // the Referer header: the page's origin (strict-origin-when-cross-origin)
	AcceptLanguage string
	CHUA           string // Sec-CH-UA low-entropy hints, Chromium browsers only
	CHMobile       string
	CHPlatform     string
	DNT, GPC       bool
	Email          bool
	// UniqueUA marks a User-Agent drawn as a one-off.
	UniqueUA bool
}

type visitor struct {
	ip      netip.Addr
	ua      string
	unique  bool
	lang    string
	project int
	host    string
	dnt     bool
	gpc     bool
	page    string // last page URL, the next internal referrer
}

// Mix generates hits. It is not safe for concurrent use.
type Mix struct {
	cfg      MixConfig
	r        *rand.Rand
	head     []string
	headCDF  []float64
	recent   []visitor
	next     int
	uniqueN  uint64
	marker   string
	markerN  uint64
	langs    []string
	emailCDF []float64
}

// NewMix returns a generator for cfg.
func NewMix(cfg MixConfig) *Mix {
	m := &Mix{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5bd1e995)), head: headUAs()}
	m.uniqueN = 1<<40 + cfg.Seed<<24 // one-offs never collide with the rare pool or other seeds
	sum := 0.0
	for i := range m.head {
		sum += math.Pow(float64(i+1), -cfg.ZipfS)
		m.headCDF = append(m.headCDF, sum)
	}
	for i := range m.headCDF {
		m.headCDF[i] /= sum
	}
	sum = 0
	for _, e := range emailUAs {
		sum += e.share
		m.emailCDF = append(m.emailCDF, sum)
	}
	for i := range m.emailCDF {
		m.emailCDF[i] /= sum
	}
	m.langs = []string{
		"en-US,en;q=0.9", "en-GB,en;q=0.9", "en-US,en;q=0.9", "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7",
		"es-ES,es;q=0.9", "en-US,en;q=0.5", "nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7", "it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7", "pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7",
		"pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7", "sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7", "en-AU,en;q=0.9", "ja,en-US;q=0.9,en;q=0.8", "en-CA,en-US;q=0.9,en;q=0.8",
	}
	return m
}

// HeadUAs is the number of strings in the head.
func (m *Mix) HeadUAs() int { return len(m.head) }

// SetMarker makes every pageview's page URL carry /lat/<marker>/<n> so an
// end-to-end probe can find its hits in the enriched topic.
func (m *Mix) SetMarker(marker string) { m.marker = marker }

func pickCDF(cdf []float64, u float64) int {
	i := sort.SearchFloat64s(cdf, u)
	if i >= len(cdf) {
		i = len(cdf) - 1
	}
	return i
}

func (m *Mix) chance(p float64) bool { return m.r.Float64() < p }

func (m *Mix) publicIPv4() netip.Addr {
	for {
		a := m.r.Uint32()
		b := [4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}
		switch {
		case b[0] == 0, b[0] == 10, b[0] == 127, b[0] >= 224, b[0] == 100 && b[1]&0xc0 == 64,
			b[0] == 169 && b[1] == 254, b[0] == 172 && b[1]&0xf0 == 16, b[0] == 192 && b[1] == 168,
			b[0] == 192 && b[1] == 0, b[0] == 198 && b[1]&0xfe == 18, b[0] == 198 && b[1] == 51, b[0] == 203 && b[1] == 0:
			continue
		}
		return netip.AddrFrom4(b)
	}
}

func (m *Mix) publicIPv6() netip.Addr {
	var b [16]byte
	prefixes := [][2]byte{{0x2a, 0x00}, {0x2a, 0x01}, {0x2a, 0x02}, {0x26, 0x00}, {0x26, 0x01}, {0x24, 0x09}, {0x28, 0x03}, {0x24, 0x0e}}
	p := prefixes[m.r.IntN(len(prefixes))]
	b[0], b[1] = p[0], p[1]
	for i := 2; i < 16; i++ {
		b[i] = byte(m.r.Uint32())
	}
	return netip.AddrFrom16(b)
}

const (
	ipAny = iota
	ipGoogle
	ipApple
	ipYahoo
)

func (m *Mix) proxyIP(kind int) netip.Addr {
	switch kind {
	case ipGoogle:
		return netip.AddrFrom4([4]byte{66, 249, byte(80 + m.r.IntN(16)), byte(m.r.IntN(256))})
	case ipApple:
		return netip.AddrFrom4([4]byte{17, byte(m.r.IntN(256)), byte(m.r.IntN(256)), byte(1 + m.r.IntN(254))})
	case ipYahoo:
		return netip.AddrFrom4([4]byte{98, 137, byte(m.r.IntN(256)), byte(1 + m.r.IntN(254))})
	}
	return m.publicIPv4()
}

func (m *Mix) randToken(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[m.r.IntN(len(alphabet))]
	}
	return string(b)
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

var (
	shopCats  = []string{"shoes", "jackets", "bags", "accessories", "sale", "new-in", "kids", "sports"}
	newsSecs  = []string{"world", "politics", "business", "tech", "sport", "culture", "science", "opinion"}
	saasPages = []string{"/", "/pricing", "/features", "/docs/getting-started", "/blog/release-notes", "/signup", "/login", "/dashboard", "/settings/billing", "/integrations"}
	campaigns = []string{"black_friday", "spring_sale", "newsletter_w48", "brand_search", "retargeting_q4", "launch_2025", "welcome_series", "cart_recovery"}
	utmSets   = [][2]string{{"google", "cpc"}, {"facebook", "paid_social"}, {"newsletter", "email"}, {"instagram", "social"}, {"bing", "cpc"},
		{"linkedin", "paid_social"}, {"tiktok", "paid_social"}, {"partner_blog", "referral"}, {"awin", "affiliate"}, {"criteo", "display"}}
	externalRefs = []struct {
		url   string
		share float64
	}{
		{"", 0.34}, {"https://www.google.com/", 0.38}, {"https://www.bing.com/", 0.04}, {"https://duckduckgo.com/", 0.02},
		{"https://m.facebook.com/", 0.06}, {"https://l.instagram.com/", 0.03}, {"https://t.co/", 0.02}, {"https://www.linkedin.com/", 0.02},
		{"https://www.reddit.com/", 0.02}, {"https://news.ycombinator.com/", 0.01}, {"https://www.google.co.uk/", 0.03}, {"https://search.yahoo.com/", 0.01},
		{"https://android-app://com.google.android.gm/", 0.02},
	}
)

func (m *Mix) pagePath(project int) string {
	switch project {
	case 0:
		switch m.r.IntN(5) {
		case 0:
			return "/"
		case 1, 2:
			// product ids: a few best sellers, a long tail
			id := int(math.Exp(m.r.Float64()*math.Log(20000))) + 1000
			return fmt.Sprintf("/products/%s-%d", shopCats[m.r.IntN(len(shopCats))], id)
		case 3:
			return "/category/" + shopCats[m.r.IntN(len(shopCats))]
		default:
			return []string{"/cart", "/checkout", "/account", "/search"}[m.r.IntN(4)]
		}
	case 1:
		if m.chance(0.15) {
			return "/"
		}
		return fmt.Sprintf("/%s/2025/%02d/story-%d", newsSecs[m.r.IntN(len(newsSecs))], 1+m.r.IntN(12), 100000+m.r.IntN(900000))
	default:
		return saasPages[m.r.IntN(len(saasPages))]
	}
}

// landingQuery returns campaign parameters and click ids for a landing page.
func (m *Mix) landingQuery() string {
	var q []string
	if m.chance(0.28) {
		s := utmSets[m.r.IntN(len(utmSets))]
		q = append(q, "utm_source="+s[0], "utm_medium="+s[1], "utm_campaign="+campaigns[m.r.IntN(len(campaigns))])
		if m.chance(0.3) {
			q = append(q, "utm_content=variant_"+string(rune('a'+m.r.IntN(4))))
		}
		if s[1] == "cpc" && m.chance(0.5) {
			q = append(q, "utm_term="+[]string{"running+shoes", "winter+jacket", "crm+software", "breaking+news"}[m.r.IntN(4)])
		}
	}
	switch u := m.r.Float64(); {
	case u < 0.08:
		q = append(q, "gclid=Cj0KCQiA"+m.randToken(82, b64url), "gad_source=1")
	case u < 0.13:
		q = append(q, "fbclid=IwAR"+m.randToken(58, b64url))
	case u < 0.14:
		q = append(q, "msclkid="+hex.EncodeToString([]byte(m.randToken(16, b64url))))
	case u < 0.145:
		q = append(q, "ttclid=E_"+m.randToken(40, b64url))
	case u < 0.15:
		q = append(q, "li_fat_id="+m.randToken(36, "0123456789abcdef-"))
	}
	if m.chance(0.1) {
		q = append(q, []string{"page=2", "sort=price_asc", "q=boots", "ref=homepage"}[m.r.IntN(4)])
	}
	return strings.Join(q, "&")
}

func isChromium(ua string) (brand string, ok bool) {
	if !strings.Contains(ua, " Chrome/") || strings.Contains(ua, "; wv)") || strings.Contains(ua, "compatible;") || strings.Contains(ua, "UCBrowser") {
		return "", false
	}
	i := strings.Index(ua, " Chrome/") + len(" Chrome/")
	j := strings.IndexByte(ua[i:], '.')
	major := ua[i : i+j]
	switch {
	case strings.Contains(ua, "Edg/"):
		return `"Microsoft Edge";v="` + major + `", "Chromium";v="` + major + `", "Not_A Brand";v="24"`, true
	case strings.Contains(ua, "OPR/"):
		return `"Opera";v="` + major + `", "Chromium";v="` + major + `", "Not_A Brand";v="24"`, true
	case strings.Contains(ua, "SamsungBrowser"):
		return `"Samsung Internet";v="` + major + `", "Chromium";v="` + major + `", "Not_A Brand";v="24"`, true
	}
	return `"Google Chrome";v="` + major + `", "Chromium";v="` + major + `", "Not_A Brand";v="24"`, true
}

func platformOf(ua string) string {
	switch {
	case strings.Contains(ua, "Android"):
		return `"Android"`
	case strings.Contains(ua, "Windows"):
		return `"Windows"`
	case strings.Contains(ua, "Macintosh"):
		return `"macOS"`
	case strings.Contains(ua, "CrOS"):
		return `"Chrome OS"`
	}
	return `"Linux"`
}

func (m *Mix) newVisitor() visitor {
	v := visitor{lang: m.langs[m.r.IntN(len(m.langs))]}
	switch u := m.r.Float64(); {
	case u < m.cfg.UniqueFrac:
		m.uniqueN++
		v.ua, v.unique = rareUA(m.uniqueN), true
	case u < m.cfg.UniqueFrac+m.cfg.RareFrac:
		v.ua = rareUA(uint64(m.r.IntN(max(1, m.cfg.RarePool))))
	default:
		v.ua = m.head[pickCDF(m.headCDF, m.r.Float64())]
	}
	if m.chance(0.15) {
		v.ip = m.publicIPv6()
	} else {
		v.ip = m.publicIPv4()
	}
	u := m.r.Float64()
	for i, p := range mixProjects {
		if u < p.share || i == len(mixProjects)-1 {
			v.project = i
			break
		}
		u -= p.share
	}
	hosts := mixProjects[v.project].hosts
	v.host = hosts[m.r.IntN(len(hosts))]
	v.dnt = m.chance(0.06)
	v.gpc = m.chance(0.03)
	return v
}

// Next fills h with the next hit of the mix.
func (m *Mix) Next(h *Hit) {
	*h = Hit{}
	var q strings.Builder
	if m.chance(m.cfg.EmailFrac) {
		e := emailUAs[pickCDF(m.emailCDF, m.r.Float64())]
		p := m.r.IntN(len(mixProjects))
		h.Key, h.Project, h.UA, h.IP, h.Email = mixProjects[p].key, mixProjects[p].id, e.ua, m.proxyIP(e.ipKind), true
		camp := campaigns[m.r.IntN(len(campaigns))]
		fmt.Fprintf(&q, "key=%s&e=open&ecid=%s&erid=%s&utm_source=newsletter&utm_medium=email&utm_campaign=%s",
			h.Key, camp, m.randToken(16, "0123456789abcdef"), camp)
		if m.marker != "" {
			// Email opens carry no page; the probe marks them with a
			// campaign id instead.
			m.markerN++
			fmt.Fprintf(&q, "&url=%s", url.QueryEscape(fmt.Sprintf("https://mail.example/lat/%s/%d", m.marker, m.markerN)))
			h.PageURL = fmt.Sprintf("https://mail.example/lat/%s/%d", m.marker, m.markerN)
		}
		h.Query = q.String()
		h.AcceptLanguage = m.langs[m.r.IntN(len(m.langs))]
		return
	}

	var v *visitor
	landing := false
	if len(m.recent) < max(1, m.cfg.RecentVisitors) && (len(m.recent) == 0 || m.chance(m.cfg.NewVisitorProb)) {
		m.recent = append(m.recent, m.newVisitor())
		v, landing = &m.recent[len(m.recent)-1], true
	} else if m.chance(m.cfg.NewVisitorProb) {
		i := m.next % len(m.recent)
		m.next++
		m.recent[i] = m.newVisitor()
		v, landing = &m.recent[i], true
	} else {
		v = &m.recent[m.r.IntN(len(m.recent))]
	}
	p := mixProjects[v.project]
	h.Key, h.Project, h.UA, h.IP, h.UniqueUA = p.key, p.id, v.ua, v.ip, v.unique
	h.AcceptLanguage, h.DNT, h.GPC = v.lang, v.dnt, v.gpc
	origin := "https://" + v.host
	path := m.pagePath(v.project)
	if m.marker != "" {
		m.markerN++
		path = fmt.Sprintf("/lat/%s/%d", m.marker, m.markerN)
	}
	page := origin + path
	ref := ""
	if landing {
		if lq := m.landingQuery(); lq != "" {
			page += "?" + lq
		}
		u := m.r.Float64()
		for _, r := range externalRefs {
			if u < r.share {
				ref = r.url
				break
			}
			u -= r.share
		}
	} else if v.page != "" && m.chance(0.85) {
		ref = v.page
	}
	v.page = page
	h.PageURL, h.Referer = page, origin+"/"
	fmt.Fprintf(&q, "key=%s&url=%s", h.Key, url.QueryEscape(page))
	if ref != "" {
		fmt.Fprintf(&q, "&ref=%s", url.QueryEscape(ref))
	}
	fmt.Fprintf(&q, "&cb=%d", m.r.Uint32())
	h.Query = q.String()
	if brand, ok := isChromium(h.UA); ok {
		h.CHUA = brand
		h.CHMobile = "?0"
		if strings.Contains(h.UA, "Mobile") {
			h.CHMobile = "?1"
		}
		h.CHPlatform = platformOf(h.UA)
	}
}
