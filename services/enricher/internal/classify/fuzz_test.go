package classify

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

var validMediums = map[string]bool{
	MediumSearch: true, MediumSocial: true, MediumEmail: true, MediumPaid: true,
	MediumInternal: true, MediumUnknown: true, MediumDirect: true,
}

func FuzzReferrer(f *testing.F) {
	for _, tc := range refCases {
		f.Add(tc.ref, hostOf(tc.page))
	}
	f.Add("https://www.google.com/search?q=%zz%", "example.com")
	f.Add("http://[::1", "")
	f.Add("https://..../?q=", ".")
	f.Fuzz(func(t *testing.T, ref, pageHost string) {
		var got ReferrerResult
		Referrer(ref, "", pageHost, &got)
		if !validMediums[got.Medium] {
			t.Fatalf("medium %q", got.Medium)
		}
		if (got.Medium == MediumDirect) != (strings.TrimSpace(ref) == "") {
			t.Fatalf("ref %q: medium %q", ref, got.Medium)
		}
		if got.Term != "" && (got.Medium != MediumSearch || !utf8.ValidString(got.Term) || len(got.Term) > MaxTermLen) {
			t.Fatalf("term %q for %+v", got.Term, got)
		}
		switch got.Medium {
		case MediumInternal, MediumDirect:
			if got.Source != "" {
				t.Fatalf("source %q for %s", got.Source, got.Medium)
			}
		case MediumSearch, MediumSocial, MediumEmail, MediumPaid:
			if got.Source == "" {
				t.Fatalf("no source for %s", got.Medium)
			}
		}
		// A referrer on the page's own host is always internal.
		if h := hostOf(ref); h != "" && ref == strings.TrimSpace(ref) {
			var self ReferrerResult
			Referrer(ref, h, h, &self)
			if self.Medium != MediumInternal {
				t.Fatalf("self-referral %q: %+v", ref, self)
			}
		}
		// The channel of any referrer result is a known channel.
		if ch := Channel(ChannelInput{ReferrerMedium: got.Medium, ReferrerSource: got.Source, UTMSource: pageHost, UTMMedium: ref}); !validChannel(ch) {
			t.Fatalf("channel %q", ch)
		}
	})
}

func validChannel(ch string) bool {
	switch ch {
	case ChannelPaidSearch, ChannelOrganicSearch, ChannelPaidSocial, ChannelOrganicSocial, ChannelEmail,
		ChannelAffiliates, ChannelDisplay, ChannelReferral, ChannelDirect, ChannelUnassigned:
		return true
	}
	return false
}

func FuzzAgent(f *testing.F) {
	for _, tc := range agentCases {
		f.Add(tc.ua, tc.ip.AsSlice())
	}
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/ (KHTML, like Gecko) Mobile/", []byte{17, 0, 0, 1})
	f.Add("\xff\xfeMozilla", []byte{})
	c, err := NewAgentClassifier(AgentConfig{CacheSize: 512})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ua string, ipBytes []byte) {
		ip, _ := netip.AddrFromSlice(ipBytes)
		dev := parseUA(t, ua)
		var first, second AgentResult
		c.Classify([]byte(ua), dev, ip, &first)
		c.Classify([]byte(ua), dev, ip, &second) // from the cache
		if first != second {
			t.Fatalf("cached %+v, computed %+v", second, first)
		}
		r := first
		if r.IsBot && r.EmailProxy != "" {
			t.Fatalf("bot and mail proxy: %+v", r)
		}
		if r.IsBot != (r.BotName != "") {
			t.Fatalf("IsBot %v with name %q", r.IsBot, r.BotName)
		}
		if r.MachineOpen != (r.EmailProxy == EmailProxyAppleMPP) {
			t.Fatalf("machine open %+v", r)
		}
		switch r.EmailProxy {
		case "", EmailProxyGmail, EmailProxyYahoo:
		case EmailProxyAppleMPP:
			if !c.apple.Contains(ip.Unmap()) {
				t.Fatalf("MPP outside Apple's space: %v", ip)
			}
		default:
			t.Fatalf("email proxy %q", r.EmailProxy)
		}
		if ev, _, _ := EmailEvent("pageview", nil, &r); (r.EmailProxy != "") != (ev == EventEmailOpen) {
			t.Fatalf("event %q for %+v", ev, r)
		}
	})
}
