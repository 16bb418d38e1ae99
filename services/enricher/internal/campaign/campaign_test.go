package campaign

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// q builds a pixel query string from name/value pairs, percent-encoding
// both the way the browser SDK's URLSearchParams does.
func q(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(pairs[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(pairs[i+1]))
	}
	return b.String()
}

// public returns r without its scratch memory and with empty slices as nil,
// so expected values can be written as literals.
func public(r Result) Result {
	r.scratch = scratch{}
	if len(r.ClickIDs) == 0 {
		r.ClickIDs = nil
	}
	if len(r.Params) == 0 {
		r.Params = nil
	}
	return r
}

func utm(source, medium, campaign, term, content, id string) [numUTM]string {
	return [numUTM]string{source, medium, campaign, term, content, id}
}

// withPrimary fills the primary click-ID fields from ClickIDs[0].
func withPrimary(r Result) Result {
	if len(r.ClickIDs) > 0 {
		r.ClickID, r.ClickIDParam, r.ClickPlatform = r.ClickIDs[0].Value, r.ClickIDs[0].Param, r.ClickIDs[0].Platform
	}
	if r.EventType == "" {
		r.EventType = DefaultEvent
	}
	return r
}

type parseCase struct {
	name           string
	query, referer string
	want           Result
}

// Landing-page URLs as the ad platforms and email tools build them.
const (
	googleAdsURL = "https://shop.example.com/products/running-shoes?gclid=EAIaIQobChMI8ZbR2q3s-gIVhI5oCR0xVA0QEAAYASAAEgKJ6_D_BwE&gad_source=1&gad_campaignid=21021234567&gbraid=0AAAAADzZ2Z3xyzAbC&utm_source=google&utm_medium=cpc&utm_campaign=spring_sale"
	metaURL      = "https://www.example.com/landing?utm_source=facebook&utm_medium=paid_social&utm_campaign=Retargeting%20Q4&utm_content=Carousel&fbclid=IwZXh0bgNhZW0CMTAAAR2fJ8s3Kx_aem_AbCdEfGhIjKlMnOp"
	msURL        = "https://example.com/?msclkid=5e1d2c3b4a5f16e7d8c9b0a1f2e3d4c5&utm_source=bing&utm_medium=cpc&utm_campaign=Brand&utm_term=pixel%20tracking&utm_content=Ad%20Group%201"
	tiktokURL    = "https://example.com/promo/winter?utm_source=tiktok&utm_medium=paid&utm_campaign=winter_launch&ttclid=E.C.P.CrABc123xyzQ5v-Lm2bA&utm_id=1789456123"
	linkedinURL  = "https://example.com/whitepaper?li_fat_id=3c5e9f6a-1b2c-4d5e-8f90-a1b2c3d4e5f6&utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm_q1"
	mailchimpURL = "https://example.com/newsletter/offer?utm_source=Newsletter&utm_medium=email&utm_campaign=nov_offer&mc_cid=a1b2c3d4e5&mc_eid=f6e5d4c3b2"
	klaviyoURL   = "https://example.com/collections/sale?utm_source=klaviyo&utm_medium=email&utm_campaign=Black%20Friday%20%28VIP%29&_kx=AbC123dEf456_GhI.XyZ789"
)

var parseCases = []parseCase{
	{"google ads", q("url", googleAdsURL, "e", "pageview"), "https://shop.example.com/", withPrimary(Result{
		PageURL: googleAdsURL, PageHost: "shop.example.com", PagePath: "/products/running-shoes",
		UTM: utm("google", "cpc", "spring_sale", "", "", ""),
		ClickIDs: []ClickID{
			{"gclid", "EAIaIQobChMI8ZbR2q3s-gIVhI5oCR0xVA0QEAAYASAAEgKJ6_D_BwE", "google_ads"},
			{"gbraid", "0AAAAADzZ2Z3xyzAbC", "google_ads"},
			{"gad_campaignid", "21021234567", "google_ads"},
			{"gad_source", "1", "google_ads"},
		},
	})},
	{"meta, case-sensitive fbclid", q("url", metaURL, "ref", "https://l.facebook.com/"), "", withPrimary(Result{
		PageURL: metaURL, PageHost: "www.example.com", PagePath: "/landing",
		ReferrerURL: "https://l.facebook.com/", ReferrerHost: "l.facebook.com",
		UTM:      utm("facebook", "paid_social", "Retargeting Q4", "", "Carousel", ""),
		ClickIDs: []ClickID{{"fbclid", "IwZXh0bgNhZW0CMTAAAR2fJ8s3Kx_aem_AbCdEfGhIjKlMnOp", "meta"}},
	})},
	{"microsoft ads", q("url", msURL, "ref", "https://www.bing.com/"), "", withPrimary(Result{
		PageURL: msURL, PageHost: "example.com", PagePath: "/",
		ReferrerURL: "https://www.bing.com/", ReferrerHost: "www.bing.com",
		UTM:      utm("bing", "cpc", "Brand", "pixel tracking", "Ad Group 1", ""),
		ClickIDs: []ClickID{{"msclkid", "5e1d2c3b4a5f16e7d8c9b0a1f2e3d4c5", "microsoft_ads"}},
	})},
	{"tiktok", q("url", tiktokURL, "e", "view_content"), "", withPrimary(Result{
		PageURL: tiktokURL, PageHost: "example.com", PagePath: "/promo/winter", EventType: "view_content",
		UTM:      utm("tiktok", "paid", "winter_launch", "", "", "1789456123"),
		ClickIDs: []ClickID{{"ttclid", "E.C.P.CrABc123xyzQ5v-Lm2bA", "tiktok"}},
	})},
	{"linkedin", q("url", linkedinURL, "e", "lead"), "", withPrimary(Result{
		PageURL: linkedinURL, PageHost: "example.com", PagePath: "/whitepaper", EventType: "lead",
		UTM:      utm("linkedin", "paid_social", "abm_q1", "", "", ""),
		ClickIDs: []ClickID{{"li_fat_id", "3c5e9f6a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "linkedin"}},
	})},
	{"mailchimp", q("url", mailchimpURL), "", withPrimary(Result{
		PageURL: mailchimpURL, PageHost: "example.com", PagePath: "/newsletter/offer",
		UTM: utm("Newsletter", "email", "nov_offer", "", "", ""),
		ClickIDs: []ClickID{
			{"mc_cid", "a1b2c3d4e5", "mailchimp"},
			{"mc_eid", "f6e5d4c3b2", "mailchimp"},
		},
	})},
	{"klaviyo", q("url", klaviyoURL), "", withPrimary(Result{
		PageURL: klaviyoURL, PageHost: "example.com", PagePath: "/collections/sale",
		UTM:      utm("klaviyo", "email", "Black Friday (VIP)", "", "", ""),
		ClickIDs: []ClickID{{"_kx", "AbC123dEf456_GhI.XyZ789", "klaviyo"}},
	})},
	{"instagram share ranks below an ad click",
		q("url", "https://example.com/p?igshid=MzRlODBiNWFlZA%3D%3D&fbclid=PAZXh0bgNhZW0", "ScCid", "snap-1"), "",
		withPrimary(Result{
			PageURL: "https://example.com/p?igshid=MzRlODBiNWFlZA%3D%3D&fbclid=PAZXh0bgNhZW0", PageHost: "example.com", PagePath: "/p",
			ClickIDs: []ClickID{
				{"fbclid", "PAZXh0bgNhZW0", "meta"},
				{"ScCid", "snap-1", "snapchat"},
				{"igshid", "MzRlODBiNWFlZA==", "instagram"},
			},
		})},
	{"pixel parameters win over the page URL",
		q("url", "https://example.com/?gclid=FROM_PAGE&utm_source=page&utm_medium=cpc", "gclid", "FROM_PIXEL", "utm_source", "pixel"), "",
		withPrimary(Result{
			PageURL: "https://example.com/?gclid=FROM_PAGE&utm_source=page&utm_medium=cpc", PageHost: "example.com", PagePath: "/",
			UTM:      utm("pixel", "cpc", "", "", "", ""),
			ClickIDs: []ClickID{{"gclid", "FROM_PIXEL", "google_ads"}},
		})},
	{"names case-insensitive, values as sent",
		"GCLID=AbC-dEf&UTM_Source=NewsLetter&sccid=Snap-XyZ&Url=https%3A%2F%2FExample.com%2FPath", "",
		withPrimary(Result{
			PageURL: "https://Example.com/Path", PageHost: "example.com", PagePath: "/Path",
			UTM: utm("NewsLetter", "", "", "", "", ""),
			ClickIDs: []ClickID{
				{"gclid", "AbC-dEf", "google_ads"},
				{"ScCid", "Snap-XyZ", "snapchat"},
			},
		})},
	{"first occurrence wins", "utm_source=first&utm_source=second&UTM_SOURCE=third&e=purchase&e=lead", "",
		withPrimary(Result{UTM: utm("first", "", "", "", "", ""), EventType: "purchase"})},
	{"referer fallback with port, query and fragment", "e=pageview",
		"https://Shop.Example.COM:8443/path/x?utm_source=ref&fbclid=FbC_1#utm_medium=fragment",
		withPrimary(Result{
			PageURL: "https://Shop.Example.COM:8443/path/x?utm_source=ref&fbclid=FbC_1#utm_medium=fragment", PageFromReferer: true,
			PageHost: "shop.example.com", PagePath: "/path/x",
			UTM:      utm("ref", "", "", "", "", ""),
			ClickIDs: []ClickID{{"fbclid", "FbC_1", "meta"}},
		})},
	{"origin-only referer", "", "https://example.com",
		withPrimary(Result{PageURL: "https://example.com", PageFromReferer: true, PageHost: "example.com", PagePath: "/"})},
	{"empty url parameter falls back to referer", "url=", "https://example.com/a",
		withPrimary(Result{PageURL: "https://example.com/a", PageFromReferer: true, PageHost: "example.com", PagePath: "/a"})},
	{"ipv6 host and userinfo", q("url", "http://user:secret@[2001:DB8::1]:8080/x?y=1", "ref", "https://u@Example.org:443"), "",
		withPrimary(Result{
			PageURL: "http://user:secret@[2001:DB8::1]:8080/x?y=1", PageHost: "2001:db8::1", PagePath: "/x",
			ReferrerURL: "https://u@Example.org:443", ReferrerHost: "example.org",
		})},
	{"relative page URL", q("url", "/checkout/step-2?utm_campaign=x"), "",
		withPrimary(Result{PageURL: "/checkout/step-2?utm_campaign=x", PagePath: "/checkout/step-2", UTM: utm("", "", "x", "", "", "")})},
	{"event type folded to lower case", "e=Add_To_Cart", "",
		withPrimary(Result{EventType: "add_to_cart"})},
	{"event type percent-decoded then checked", "e=%41dd_%74o_cart", "",
		withPrimary(Result{EventType: "add_to_cart"})},
	{"invalid event type", "e=add-to-cart", "",
		withPrimary(Result{Flags: FlagInvalidEvent})},
	{"event type with encoded junk", "e=purchase%00", "",
		withPrimary(Result{Flags: FlagInvalidEvent})},
	{"event type too long", "e=" + strings.Repeat("a", MaxEventLen+1), "",
		withPrimary(Result{Flags: FlagInvalidEvent})},
	{"event type at the limit", "e=" + strings.Repeat("a", MaxEventLen), "",
		withPrimary(Result{EventType: strings.Repeat("a", MaxEventLen)})},
	{"empty event type is the default, not an error", "e=", "",
		withPrimary(Result{})},
	{"invalid percent-encoding keeps what parses",
		"url=https%3A%2F%2Fexample.com%2F%ZZpath%2&utm_source=ok%2&gclid=Cj0%zz", "",
		withPrimary(Result{
			PageURL: "https://example.com/%ZZpath%2", PageHost: "example.com", PagePath: "/%ZZpath%2",
			UTM:      utm("ok%2", "", "", "", "", ""),
			ClickIDs: []ClickID{{"gclid", "Cj0%zz", "google_ads"}},
			Flags:    FlagBadEncoding,
		})},
	{"plus is a space", "utm_campaign=spring+sale+2025&utm_term=a%2Bb", "",
		withPrimary(Result{UTM: utm("", "", "spring sale 2025", "a+b", "", "")})},
	{"invalid UTF-8 replaced", "utm_source=caf%E9&utm_medium=caf%C3%A9", "",
		withPrimary(Result{UTM: utm("caf\uFFFD", "café", "", "", "", ""), Flags: FlagBadEncoding})},
	{"other parameters kept in order", "key=pk_live_123&cb=8273645&Custom%20Name=v%2B1&flag&=orphan&&", "",
		withPrimary(Result{Params: []Param{
			{"key", "pk_live_123"}, {"cb", "8273645"}, {"Custom Name", "v+1"}, {"flag", ""},
		}})},
	{"page URL parameters are not copied to Params", q("url", "https://example.com/?color=red&size=9"), "",
		withPrimary(Result{PageURL: "https://example.com/?color=red&size=9", PageHost: "example.com", PagePath: "/"})},
	{"semicolons are not separators", "utm_source=a;utm_medium=b", "",
		withPrimary(Result{UTM: utm("a;utm_medium=b", "", "", "", "", "")})},
	{"nothing at all", "", "", withPrimary(Result{})},
}

func TestParse(t *testing.T) {
	// One Result reused across all cases, in both orders, as a worker does:
	// nothing may leak from one record into the next.
	var out Result
	for _, order := range []string{"forward", "backward"} {
		for i := range parseCases {
			tt := parseCases[i]
			if order == "backward" {
				tt = parseCases[len(parseCases)-1-i]
			}
			t.Run(order+"/"+tt.name, func(t *testing.T) {
				Parse([]byte(tt.query), []byte(tt.referer), &out)
				if got := public(out); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Parse(%q, %q)\n got %+v\nwant %+v", tt.query, tt.referer, got, tt.want)
				}
				checkAgainstNetURL(t, &out)
			})
		}
	}
}

// checkAgainstNetURL compares host and path with net/url for URLs it
// accepts, as an independent oracle for the hand-written splitter.
func checkAgainstNetURL(t *testing.T, r *Result) {
	t.Helper()
	u, err := url.Parse(r.PageURL)
	if r.PageURL == "" || err != nil {
		return
	}
	if want := strings.ToLower(u.Hostname()); r.PageHost != want {
		t.Errorf("PageHost %q, net/url says %q", r.PageHost, want)
	}
	wantPath := u.EscapedPath()
	if wantPath == "" && u.Host != "" {
		wantPath = "/"
	}
	if r.PagePath != wantPath {
		t.Errorf("PagePath %q, net/url says %q", r.PagePath, wantPath)
	}
}

func TestLimits(t *testing.T) {
	longURL := "https://Example.com/" + strings.Repeat("p", MaxURLLen)
	var out Result

	t.Run("url cut at MaxURLLen", func(t *testing.T) {
		Parse([]byte(q("url", longURL, "utm_source", "s")), nil, &out)
		if len(out.PageURL) != MaxURLLen || !strings.HasPrefix(longURL, out.PageURL) {
			t.Fatalf("PageURL of %d bytes", len(out.PageURL))
		}
		if out.PageHost != "example.com" || !out.Flags.Has(FlagTruncated) || out.UTM[UTMSource] != "s" {
			t.Fatalf("got host %q flags %b utm %q", out.PageHost, out.Flags, out.UTM[UTMSource])
		}
	})
	t.Run("referer header cut at MaxURLLen", func(t *testing.T) {
		Parse(nil, []byte(longURL), &out)
		if len(out.PageURL) != MaxURLLen || !out.Flags.Has(FlagTruncated) || out.PageHost != "example.com" {
			t.Fatalf("PageURL of %d bytes, flags %b", len(out.PageURL), out.Flags)
		}
	})
	t.Run("value cut at MaxValueLen on a character boundary", func(t *testing.T) {
		v := strings.Repeat("é", MaxValueLen) // 2 bytes each
		Parse([]byte(q("utm_campaign", v, "note", v)), nil, &out)
		c := out.UTM[UTMCampaign]
		if len(c) != MaxValueLen || !utf8.ValidString(c) || out.Flags != FlagTruncated {
			t.Fatalf("campaign of %d bytes, valid %v, flags %b", len(c), utf8.ValidString(c), out.Flags)
		}
		if p, _ := out.Param("note"); len(p) != MaxValueLen {
			t.Fatalf("param of %d bytes", len(p))
		}
	})
	t.Run("odd cut inside a character", func(t *testing.T) {
		v := "x" + strings.Repeat("é", MaxValueLen)
		Parse([]byte(q("utm_term", v)), nil, &out)
		// The limit falls inside a character: it is dropped whole, and
		// that is a cut, not an encoding error.
		if c := out.UTM[UTMTerm]; len(c) != MaxValueLen-1 || !utf8.ValidString(c) || out.Flags != FlagTruncated {
			t.Fatalf("term of %d bytes, valid %v, flags %b", len(c), utf8.ValidString(c), out.Flags)
		}
	})
	t.Run("referer cut inside a character", func(t *testing.T) {
		ref := "https://example.com/x" + strings.Repeat("é", MaxURLLen) // odd prefix
		Parse(nil, []byte(ref), &out)
		if len(out.PageURL) != MaxURLLen-1 || !utf8.ValidString(out.PageURL) || out.Flags != FlagTruncated {
			t.Fatalf("PageURL of %d bytes, valid %v, flags %b", len(out.PageURL), utf8.ValidString(out.PageURL), out.Flags)
		}
	})
	t.Run("over-long click id dropped, not cut", func(t *testing.T) {
		Parse([]byte(q("gclid", strings.Repeat("A", MaxValueLen+1), "fbclid", "ok")), nil, &out)
		if len(out.ClickIDs) != 1 || out.ClickIDParam != "fbclid" || !out.Flags.Has(FlagTruncated) {
			t.Fatalf("click ids %+v flags %b", out.ClickIDs, out.Flags)
		}
	})
	t.Run("click id at the limit kept", func(t *testing.T) {
		id := strings.Repeat("A", MaxValueLen)
		Parse([]byte(q("gclid", id)), nil, &out)
		if out.ClickID != id || out.Flags != 0 {
			t.Fatalf("click id of %d bytes, flags %b", len(out.ClickID), out.Flags)
		}
	})
	t.Run("over-long pixel click id lets the page URL's through", func(t *testing.T) {
		Parse([]byte(q("gclid", strings.Repeat("A", MaxValueLen+1), "url", "https://e.com/?gclid=PAGE")), nil, &out)
		if out.ClickID != "PAGE" {
			t.Fatalf("click id %q", out.ClickID)
		}
	})
	t.Run("over-long name ignored", func(t *testing.T) {
		Parse([]byte(strings.Repeat("n", MaxNameLen+1)+"=v&utm_source=s"), nil, &out)
		if len(out.Params) != 0 || out.UTM[UTMSource] != "s" || !out.Flags.Has(FlagTruncated) {
			t.Fatalf("params %+v utm %q flags %b", out.Params, out.UTM[UTMSource], out.Flags)
		}
	})
	t.Run("parameters after MaxParams ignored", func(t *testing.T) {
		var b strings.Builder
		for i := range MaxParams {
			if i == MaxParams-1 {
				b.WriteString("utm_source=last-counted&")
				continue
			}
			b.WriteString("p=1&")
		}
		b.WriteString("gclid=too-late")
		Parse([]byte(b.String()), nil, &out)
		if out.UTM[UTMSource] != "last-counted" || out.ClickID != "" || !out.Flags.Has(FlagTooManyParams) {
			t.Fatalf("utm %q click %q flags %b", out.UTM[UTMSource], out.ClickID, out.Flags)
		}
		if len(out.Params) != MaxParams-1 {
			t.Fatalf("%d params kept", len(out.Params))
		}
	})
	t.Run("page URL query has its own parameter budget", func(t *testing.T) {
		page := "https://e.com/?" + strings.Repeat("x=1&", MaxParams) + "gclid=late"
		Parse([]byte(q("url", page)), nil, &out)
		if out.ClickID != "" || !out.Flags.Has(FlagTooManyParams) {
			t.Fatalf("click %q flags %b", out.ClickID, out.Flags)
		}
	})
}

func TestParam(t *testing.T) {
	var out Result
	Parse([]byte("Key=one&key=two&Color=red"), nil, &out)
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"key", "one", true},
		{"KEY", "one", true},
		{"color", "red", true},
		{"size", "", false},
		{"ke", "", false},
	} {
		if got, ok := out.Param(tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("Param(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// TestEveryClickID checks each documented click ID in both the pixel query
// and the page URL, with an upper-cased name, and that its value survives
// unchanged.
func TestEveryClickID(t *testing.T) {
	documented := []string{"gclid", "gbraid", "wbraid", "dclid", "gclsrc", "gad_source", "gad_campaignid",
		"fbclid", "igshid", "msclkid", "ttclid", "li_fat_id", "twclid", "ScCid", "epik", "rdt_cid", "qclid",
		"irclickid", "yclid", "mc_cid", "mc_eid", "_kx"}
	if len(documented) != numClickIDs {
		t.Fatalf("priority table has %d click IDs, documentation %d", numClickIDs, len(documented))
	}
	var out Result
	for _, name := range documented {
		value := "Val-" + name + "_AbC.123"
		for _, query := range []string{
			q(name, value),
			q(strings.ToUpper(name), value),
			q("url", "https://example.com/?"+q(name, value)),
		} {
			Parse([]byte(query), nil, &out)
			if len(out.ClickIDs) != 1 || out.ClickIDParam != name || out.ClickID != value || out.ClickPlatform == "" {
				t.Errorf("%s: query %q gave %+v", name, query, out.ClickIDs)
			}
		}
	}
}

func TestClickIDPriority(t *testing.T) {
	// Every click ID at once, sent in reverse priority order: the result
	// must come back in priority order.
	var pairs []string
	for i := numClickIDs - 1; i >= 0; i-- {
		pairs = append(pairs, clickIDs[i].param, "v"+clickIDs[i].param)
	}
	var out Result
	Parse([]byte(q(pairs...)), nil, &out)
	if len(out.ClickIDs) != numClickIDs {
		t.Fatalf("%d click IDs", len(out.ClickIDs))
	}
	for i, c := range out.ClickIDs {
		if c.Param != clickIDs[i].param || c.Value != "v"+c.Param {
			t.Fatalf("position %d: %+v", i, c)
		}
	}
	if out.ClickIDParam != "gclid" {
		t.Fatalf("primary %q", out.ClickIDParam)
	}
	// The documented tail: gclsrc, gad_source, mc_eid, _kx and igshid rank
	// below every ad-click ID.
	rank := map[string]int{}
	for i, c := range clickIDs {
		rank[c.param] = i
	}
	for _, low := range []string{"gclsrc", "gad_source", "mc_eid", "_kx", "igshid"} {
		for _, high := range []string{"gclid", "msclkid", "fbclid", "ttclid", "li_fat_id", "twclid", "ScCid"} {
			if rank[low] < rank[high] {
				t.Errorf("%s ranks above %s", low, high)
			}
		}
	}
	if rank["igshid"] != numClickIDs-1 {
		t.Errorf("igshid is not last")
	}
}

// TestStringsSurviveReuse makes sure strings handed out are not views of
// memory that the next Parse overwrites.
func TestStringsSurviveReuse(t *testing.T) {
	var out Result
	query := []byte(q("url", googleAdsURL, "note", "first"))
	Parse(query, nil, &out)
	page, click, note := out.PageURL, out.ClickID, out.Params[0].Value
	for i := range query {
		query[i] = 'x'
	}
	Parse([]byte(q("url", "https://other.example/?gclid=SECOND", "note", "second")), nil, &out)
	if page != googleAdsURL || click != "EAIaIQobChMI8ZbR2q3s-gIVhI5oCR0xVA0QEAAYASAAEgKJ6_D_BwE" || note != "first" {
		t.Fatalf("retained strings changed: %q %q %q", page, click, note)
	}
}

func TestParseAllocations(t *testing.T) {
	var out Result
	query := []byte(benchQuery)
	ref := []byte(benchReferer)
	Parse(query, ref, &out)
	// One string conversion holds every field; slices are reused.
	if n := testing.AllocsPerRun(100, func() { Parse(query, ref, &out) }); n != 1 {
		t.Fatalf("Parse allocates %.1f times per record, want 1", n)
	}
}

// checkInvariants asserts what must hold for any input.
func checkInvariants(t *testing.T, r *Result) {
	t.Helper()
	for _, h := range []string{r.PageHost, r.ReferrerHost} {
		if strings.ContainsAny(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ/?#@") {
			t.Fatalf("host %q has upper case or delimiters", h)
		}
	}
	if strings.ContainsAny(r.PagePath, "?#") {
		t.Fatalf("path %q has query or fragment", r.PagePath)
	}
	if len(r.PageURL) > MaxURLLen || len(r.ReferrerURL) > MaxURLLen {
		t.Fatalf("URL over limit: %d, %d", len(r.PageURL), len(r.ReferrerURL))
	}
	all := []string{r.PageURL, r.PageHost, r.PagePath, r.ReferrerURL, r.ReferrerHost, r.EventType,
		r.ClickID, r.ClickIDParam, r.ClickPlatform}
	for _, u := range r.UTM {
		if len(u) > MaxValueLen {
			t.Fatalf("UTM value of %d bytes", len(u))
		}
		all = append(all, u)
	}
	for i, c := range r.ClickIDs {
		if c.Value == "" || len(c.Value) > MaxValueLen || c.Platform == "" {
			t.Fatalf("click id %+v", c)
		}
		if i > 0 && rankOf(c.Param) <= rankOf(r.ClickIDs[i-1].Param) {
			t.Fatalf("click ids out of order or repeated: %+v", r.ClickIDs)
		}
		all = append(all, c.Value)
	}
	if len(r.ClickIDs) > 0 && (r.ClickID != r.ClickIDs[0].Value || r.ClickIDParam != r.ClickIDs[0].Param) {
		t.Fatalf("primary %q/%q vs %+v", r.ClickIDParam, r.ClickID, r.ClickIDs[0])
	}
	if len(r.ClickIDs) == 0 && (r.ClickID != "" || r.ClickIDParam != "" || r.ClickPlatform != "") {
		t.Fatal("primary click id without ClickIDs")
	}
	if len(r.Params) > MaxParams {
		t.Fatalf("%d params", len(r.Params))
	}
	for _, p := range r.Params {
		if p.Name == "" || len(p.Name) > MaxNameLen || len(p.Value) > MaxValueLen {
			t.Fatalf("param %q of %d bytes", p.Name, len(p.Value))
		}
		all = append(all, p.Name, p.Value)
	}
	if !validEvent(r.EventType) {
		t.Fatalf("event type %q", r.EventType)
	}
	if r.Flags.Has(FlagInvalidEvent) && r.EventType != DefaultEvent {
		t.Fatalf("invalid event flagged but type %q", r.EventType)
	}
	for _, s := range all {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q", s)
		}
	}
}

func rankOf(param string) int {
	for i, c := range clickIDs {
		if c.param == param {
			return i
		}
	}
	return -1
}

func validEvent(e string) bool {
	if e == "" || len(e) > MaxEventLen {
		return false
	}
	for _, c := range []byte(e) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseCases {
		f.Add([]byte(tt.query), []byte(tt.referer))
	}
	f.Add([]byte("url=%"), []byte("%"))
	f.Add([]byte("e=%C3&utm_source=%F0%9F%98"), []byte("http://[::1"))
	f.Add([]byte("gclid=a&GCLID=b&url=http%3A%2F%2F%5B%3A%3A1%5D%3A80%2F%3Fgclid%3Dc"), []byte("https://a@b@C:1/"))
	var reused Result
	f.Fuzz(func(t *testing.T, query, referer []byte) {
		var fresh Result
		Parse(query, referer, &fresh)
		checkInvariants(t, &fresh)
		// A reused Result must give the same answer as a fresh one.
		Parse(query, referer, &reused)
		if !reflect.DeepEqual(public(fresh), public(reused)) {
			t.Fatalf("reused Result differs:\n%+v\n%+v", public(fresh), public(reused))
		}
		oracleUTM(t, query, &fresh)
	})
}

// oracleUTM compares UTM values with net/url's ParseQuery where the two
// parsers' rules coincide: a query it accepts, with lower-case names only,
// few parameters and short valid values.
func oracleUTM(t *testing.T, query []byte, r *Result) {
	t.Helper()
	vals, err := url.ParseQuery(string(query))
	if err != nil || strings.Count(string(query), "&") >= MaxParams || strings.Contains(string(query), ";") {
		return
	}
	for name := range vals {
		if strings.ToLower(name) != name && knownKeys[strings.ToLower(name)] != kindOther {
			return // an upper-case duplicate may legitimately win by position
		}
	}
	for i, name := range UTMParams {
		v := vals.Get(name)
		if v == "" || len(v) > MaxValueLen || !utf8.ValidString(v) {
			continue
		}
		if r.UTM[i] != v {
			t.Fatalf("%s = %q, net/url says %q", name, r.UTM[i], v)
		}
	}
}

// FuzzURL feeds arbitrary URLs through the Referer fallback and through the
// url parameter, and compares the host with net/url for plain hosts.
func FuzzURL(f *testing.F) {
	for _, s := range []string{googleAdsURL, metaURL, "https://Example.COM:8443/a?b#c", "http://[2001:DB8::1]:80/",
		"//cdn.example.com/x", "/relative?utm_source=x", "mailto:someone@example.com", "https://u:p@h/",
		"http://[::1", "HTTPS://EXAMPLE.COM", "https://example.com?", "a:b:c", "", "https://éxample.com/ü"} {
		f.Add(s)
	}
	var out Result
	f.Fuzz(func(t *testing.T, raw string) {
		Parse(nil, []byte(raw), &out)
		checkInvariants(t, &out)
		if len(raw) > 0 && len(raw) <= MaxURLLen && utf8.ValidString(raw) && out.PageURL != raw {
			t.Fatalf("PageURL %q, want %q", out.PageURL, raw)
		}
		if u, err := url.Parse(raw); err == nil && len(raw) <= MaxURLLen && plainHost(u.Host) {
			if want := strings.ToLower(u.Hostname()); out.PageHost != want {
				t.Fatalf("host %q, net/url says %q", out.PageHost, want)
			}
		}
		byParam := out
		byParam.scratch = scratch{}
		Parse([]byte("url="+url.QueryEscape(raw)), nil, &out)
		checkInvariants(t, &out)
		if len(raw) > 0 && (out.PageHost != byParam.PageHost || out.PagePath != byParam.PagePath) {
			t.Fatalf("url parameter and Referer disagree: %q/%q vs %q/%q",
				out.PageHost, out.PagePath, byParam.PageHost, byParam.PagePath)
		}
	})
}

// plainHost reports whether h is a DNS name with an optional port, where
// net/url and the hand-written splitter must agree.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	name, port, hasPort := strings.Cut(h, ":")
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	if hasPort {
		for _, c := range []byte(port) {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// benchQuery is a typical pixel request: page URL with UTM and a click ID,
// referrer, event, API key and cache buster.
var (
	benchQuery   = q("key", "pk_live_8f2a9c", "e", "pageview", "url", googleAdsURL, "ref", "https://www.google.com/", "cb", "1732651234567")
	benchReferer = "https://shop.example.com/"
)

func BenchmarkParse(b *testing.B) {
	query, ref := []byte(benchQuery), []byte(benchReferer)
	var out Result
	b.ReportAllocs()
	b.SetBytes(int64(len(query)))
	for b.Loop() {
		Parse(query, ref, &out)
	}
}

// BenchmarkParseNetURL is the same work done with url.ParseQuery and
// url.Parse, the baseline the hand-written scanner is measured against.
func BenchmarkParseNetURL(b *testing.B) {
	query, ref := []byte(benchQuery), []byte(benchReferer)
	var out Result
	b.ReportAllocs()
	b.SetBytes(int64(len(query)))
	for b.Loop() {
		parseNetURL(query, ref, &out)
	}
}

// parseNetURL implements the main rules with net/url (no limits, no repair:
// a bad escape loses the parameter). It exists for the benchmark and as a
// cross-check in TestNetURLBaselineAgrees.
func parseNetURL(query, referer []byte, out *Result) {
	*out = Result{ClickIDs: out.ClickIDs[:0], Params: out.Params[:0]}
	pixel, _ := url.ParseQuery(string(query))
	get := func(v url.Values, name string) string {
		for k, vs := range v {
			if strings.EqualFold(k, name) && len(vs) > 0 && vs[0] != "" {
				return vs[0]
			}
		}
		return ""
	}
	out.PageURL = get(pixel, "url")
	if out.PageURL == "" && len(referer) > 0 {
		out.PageURL, out.PageFromReferer = string(referer), true
	}
	var page url.Values
	if u, err := url.Parse(out.PageURL); err == nil && out.PageURL != "" {
		out.PageHost = strings.ToLower(u.Hostname())
		out.PagePath = u.EscapedPath()
		if out.PagePath == "" && u.Host != "" {
			out.PagePath = "/"
		}
		page = u.Query()
	}
	out.ReferrerURL = get(pixel, "ref")
	if u, err := url.Parse(out.ReferrerURL); err == nil {
		out.ReferrerHost = strings.ToLower(u.Hostname())
	}
	out.EventType = DefaultEvent
	if e := strings.ToLower(get(pixel, "e")); e != "" {
		if validEvent(e) {
			out.EventType = e
		} else {
			out.Flags |= FlagInvalidEvent
		}
	}
	either := func(name string) string {
		if v := get(pixel, name); v != "" {
			return v
		}
		return get(page, name)
	}
	for i, name := range UTMParams {
		out.UTM[i] = either(name)
	}
	for _, c := range clickIDs {
		if v := either(c.param); v != "" {
			out.ClickIDs = append(out.ClickIDs, ClickID{c.param, v, c.platform})
		}
	}
	if len(out.ClickIDs) > 0 {
		out.ClickID, out.ClickIDParam, out.ClickPlatform = out.ClickIDs[0].Value, out.ClickIDs[0].Param, out.ClickIDs[0].Platform
	}
	for _, pair := range strings.Split(string(query), "&") {
		name, value, _ := strings.Cut(pair, "=")
		n, err1 := url.QueryUnescape(name)
		v, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil || n == "" || knownKeys[strings.ToLower(n)] != kindOther {
			continue
		}
		out.Params = append(out.Params, Param{n, v})
	}
}

// TestNetURLBaselineAgrees checks that the benchmark baseline does the same
// job, so the comparison is fair, on the well-formed table cases.
func TestNetURLBaselineAgrees(t *testing.T) {
	var a, b Result
	compared := 0
	for _, tt := range parseCases {
		if tt.want.Flags != 0 || strings.Contains(tt.query, "first") || strings.Contains(tt.query, ";") ||
			strings.Contains(tt.query, "%C3") || strings.Contains(tt.query, "GCLID") {
			continue // the baseline has no repair, and map order loses "first wins"
		}
		Parse([]byte(tt.query), []byte(tt.referer), &a)
		parseNetURL([]byte(tt.query), []byte(tt.referer), &b)
		if !reflect.DeepEqual(public(a), public(b)) {
			t.Errorf("%s:\nhand-written %+v\nnet/url      %+v", tt.name, public(a), public(b))
		}
		compared++
	}
	if compared < len(parseCases)/2 {
		t.Fatalf("only %d of %d cases compared", compared, len(parseCases))
	}
}
