package campaign

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// mixHit is one pixel request of mixHits: the query string and the
// Referer header the enricher hands to Parse.
type mixHit struct{ query, referer []byte }

// mixHits mirrors the shape of the load generator's realistic mix
// (test/bench/mix.go, which this module cannot import): 8 % email opens
// with e=open and UTMs but no page; pageviews with url= (the page's origin
// as Referer), a third of them landing pages whose URL may carry UTMs and
// click IDs; ref= from search, social or the visitor's previous page, and a
// cache buster. A few hits have no url= (an old SDK or a <noscript> pixel)
// so the Referer fallback is exercised as well; the load mix has none.
func mixHits(n int, seed uint64) []mixHit {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	chance := func(p float64) bool { return r.Float64() < p }
	token := func(n int, alphabet string) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	projects := []struct {
		key   string
		hosts []string
		share float64
	}{
		{"bench-shop", []string{"shop.example.com", "www.shop.example.com"}, 0.5},
		{"bench-news", []string{"news.example.org"}, 0.35},
		{"bench-saas", []string{"www.example.io", "app.example.io"}, 0.15},
	}
	shopCats := []string{"shoes", "jackets", "bags", "accessories", "sale", "new-in", "kids", "sports"}
	newsSecs := []string{"world", "politics", "business", "tech", "sport", "culture", "science", "opinion"}
	saasPages := []string{"/", "/pricing", "/features", "/docs/getting-started", "/blog/release-notes", "/signup", "/login", "/dashboard", "/settings/billing", "/integrations"}
	campaigns := []string{"black_friday", "spring_sale", "newsletter_w48", "brand_search", "retargeting_q4", "launch_2025", "welcome_series", "cart_recovery"}
	utmSets := [][2]string{{"google", "cpc"}, {"facebook", "paid_social"}, {"newsletter", "email"}, {"instagram", "social"}, {"bing", "cpc"},
		{"linkedin", "paid_social"}, {"tiktok", "paid_social"}, {"partner_blog", "referral"}, {"awin", "affiliate"}, {"criteo", "display"}}
	externalRefs := []struct {
		url   string
		share float64
	}{
		{"", 0.34}, {"https://www.google.com/", 0.38}, {"https://www.bing.com/", 0.04}, {"https://duckduckgo.com/", 0.02},
		{"https://m.facebook.com/", 0.06}, {"https://l.instagram.com/", 0.03}, {"https://t.co/", 0.02}, {"https://www.linkedin.com/", 0.02},
		{"https://www.reddit.com/", 0.02}, {"https://news.ycombinator.com/", 0.01}, {"https://www.google.co.uk/", 0.03}, {"https://search.yahoo.com/", 0.01},
		{"https://android-app://com.google.android.gm/", 0.02},
	}
	pagePath := func(project int) string {
		switch project {
		case 0:
			switch r.IntN(5) {
			case 0:
				return "/"
			case 1, 2:
				id := int(math.Exp(r.Float64()*math.Log(20000))) + 1000
				return fmt.Sprintf("/products/%s-%d", shopCats[r.IntN(len(shopCats))], id)
			case 3:
				return "/category/" + shopCats[r.IntN(len(shopCats))]
			default:
				return []string{"/cart", "/checkout", "/account", "/search"}[r.IntN(4)]
			}
		case 1:
			if chance(0.15) {
				return "/"
			}
			return fmt.Sprintf("/%s/2025/%02d/story-%d", newsSecs[r.IntN(len(newsSecs))], 1+r.IntN(12), 100000+r.IntN(900000))
		default:
			return saasPages[r.IntN(len(saasPages))]
		}
	}
	landingQuery := func() string {
		var q []string
		if chance(0.28) {
			s := utmSets[r.IntN(len(utmSets))]
			q = append(q, "utm_source="+s[0], "utm_medium="+s[1], "utm_campaign="+campaigns[r.IntN(len(campaigns))])
			if chance(0.3) {
				q = append(q, "utm_content=variant_"+string(rune('a'+r.IntN(4))))
			}
			if s[1] == "cpc" && chance(0.5) {
				q = append(q, "utm_term="+[]string{"running+shoes", "winter+jacket", "crm+software", "breaking+news"}[r.IntN(4)])
			}
		}
		switch u := r.Float64(); {
		case u < 0.08:
			q = append(q, "gclid=Cj0KCQiA"+token(82, b64url), "gad_source=1")
		case u < 0.13:
			q = append(q, "fbclid=IwAR"+token(58, b64url))
		case u < 0.14:
			q = append(q, "msclkid="+hex.EncodeToString([]byte(token(16, b64url))))
		case u < 0.145:
			q = append(q, "ttclid=E_"+token(40, b64url))
		case u < 0.15:
			q = append(q, "li_fat_id="+token(36, "0123456789abcdef-"))
		}
		if chance(0.1) {
			q = append(q, []string{"page=2", "sort=price_asc", "q=boots", "ref=homepage"}[r.IntN(4)])
		}
		return strings.Join(q, "&")
	}
	type visitor struct {
		project int
		host    string
		page    string
	}
	var recent []visitor
	newVisitor := func() visitor {
		v := visitor{}
		u := r.Float64()
		for i, p := range projects {
			if u < p.share || i == len(projects)-1 {
				v.project = i
				break
			}
			u -= p.share
		}
		v.host = projects[v.project].hosts[r.IntN(len(projects[v.project].hosts))]
		return v
	}

	hits := make([]mixHit, 0, n)
	for len(hits) < n {
		var q strings.Builder
		if chance(0.08) {
			key := projects[r.IntN(len(projects))].key
			camp := campaigns[r.IntN(len(campaigns))]
			fmt.Fprintf(&q, "key=%s&e=open&ecid=%s&erid=%s&utm_source=newsletter&utm_medium=email&utm_campaign=%s",
				key, camp, token(16, "0123456789abcdef"), camp)
			hits = append(hits, mixHit{query: []byte(q.String())})
			continue
		}
		var v *visitor
		landing := false
		if len(recent) == 0 || chance(0.35) {
			if len(recent) < 500 {
				recent = append(recent, newVisitor())
				v = &recent[len(recent)-1]
			} else {
				i := r.IntN(len(recent))
				recent[i] = newVisitor()
				v = &recent[i]
			}
			landing = true
		} else {
			v = &recent[r.IntN(len(recent))]
		}
		origin := "https://" + v.host
		page := origin + pagePath(v.project)
		ref := ""
		if landing {
			if lq := landingQuery(); lq != "" {
				page += "?" + lq
			}
			u := r.Float64()
			for _, e := range externalRefs {
				if u < e.share {
					ref = e.url
					break
				}
				u -= e.share
			}
		} else if v.page != "" && chance(0.85) {
			ref = v.page
		}
		v.page = page
		fmt.Fprintf(&q, "key=%s", projects[v.project].key)
		referer := origin + "/"
		if chance(0.05) {
			referer = page // no url=: the Referer header is all there is
		} else {
			fmt.Fprintf(&q, "&url=%s", url.QueryEscape(page))
		}
		if ref != "" {
			fmt.Fprintf(&q, "&ref=%s", url.QueryEscape(ref))
		}
		fmt.Fprintf(&q, "&cb=%d", r.Uint32())
		hits = append(hits, mixHit{query: []byte(q.String()), referer: []byte(referer)})
	}
	return hits
}

// BenchmarkParseMix parses the realistic mix, one record per op.
func BenchmarkParseMix(b *testing.B) {
	hits := mixHits(4096, 1)
	size := 0
	for _, h := range hits {
		size += len(h.query) + len(h.referer)
	}
	var out Result
	b.ReportAllocs()
	b.SetBytes(int64(size / len(hits)))
	i := 0
	for b.Loop() {
		h := &hits[i]
		Parse(h.query, h.referer, &out)
		if i++; i == len(hits) {
			i = 0
		}
	}
}
