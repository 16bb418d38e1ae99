package pageview

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func sample() *Pageview {
	lat, lon := 52.1833, -0.1833
	return &Pageview{
		EventID: "019abc00-0000-7000-8000-000000000001", EventType: "pageview", ProjectID: "demo-project",
		APIKey: "demo", ReceivedAt: "2026-11-26T20:00:00.123456789Z",
		PageURL: "https://shop.example/p?a=1&b=<x>", PageHost: "shop.example", PagePath: "/p",
		ReferrerURL: "https://www.google.com/", ReferrerHost: "www.google.com",
		UTMSource: "google", UTMMedium: "cpc", UTMCampaign: "black \"friday\"", UTMTerm: "shoes\n", UTMContent: "\u2028", UTMID: "42",
		ClickIDs: []KV{{"gclid", "Cj0KCQ"}, {"fbclid", "IwAR_Mixed"}}, ClickID: "Cj0KCQ", ClickIDParam: "gclid", ClickPlatform: "google_ads",
		GeoCountryCode: "GB", GeoCountry: "United Kingdom", GeoRegionCode: "ENG", GeoRegion: "England", GeoCity: "Gamlingay",
		GeoPostalCode: "SG19", GeoLatitude: &lat, GeoLongitude: &lon, GeoTimezone: "Europe/London",
		UserAgent: "Mozilla/5.0 \x01\xff", BrowserFamily: "Chrome", BrowserVersion: "120.0.0", OSFamily: "Windows", OSVersion: "10",
		DeviceType: "desktop", IP: "81.2.69.0", IPMode: "truncate", GeoASN: 20712, GeoASOrg: "Andrews & Arnold", GeoSource: "ip",
		IsBot: true, BotName: "Googlebot", EmailProxy: "gmail", MachineOpen: true, EmailCampaignID: "c1", EmailRecipientID: "r1",
		ReferrerMedium: "search", ReferrerSource: "Google", ReferrerTerm: "shoes", Channel: "organic_search",
		VisitorID: "0123456789abcdef", SessionID: "019abc00-0000-7000-8000-000000000001", SessionStart: true, SessionSeq: 3, AcceptLanguage: "en-GB,en;q=0.9", DNT: true, GPC: false, Prefetch: true,
		TrackingHost: "t.example", EdgeInstance: "edge-1", SchemaVersion: SchemaVersion,
	}
}

func TestRoundTripThroughEncodingJSON(t *testing.T) {
	for _, p := range []*Pageview{sample(), {SchemaVersion: 1}} {
		out := p.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		var back Pageview
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		want := *p
		want.UserAgent = strings.ToValidUTF8(want.UserAgent, "\ufffd")
		sort.Slice(back.ClickIDs, func(i, j int) bool { return back.ClickIDs[i].Key > back.ClickIDs[j].Key })
		if len(want.ClickIDs) == 0 {
			want.ClickIDs, back.ClickIDs = nil, nil
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", back, want)
		}
	}
}

// Every struct field is written under its json tag, and nothing else is.
func TestKeysMatchStructTags(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(sample().AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Pageview{})
	if len(m) != typ.NumField() {
		t.Fatalf("%d keys for %d fields", len(m), typ.NumField())
	}
	for i := range typ.NumField() {
		tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
		if _, ok := m[tag]; !ok {
			t.Errorf("field %s (%s) missing", typ.Field(i).Name, tag)
		}
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\", "<a&b>", "\x00\x1f\x7f", "é漢🙂", "\xff\xfe", "a\u2028b\u2029", "\xed\xa0\x80"} {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	p := sample()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = p.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
