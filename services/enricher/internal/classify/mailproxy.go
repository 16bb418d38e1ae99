package classify

import (
	"bytes"
	"fmt"
	"net/netip"

	"go4.org/netipx"

	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
)

// Values of AgentResult.EmailProxy: the mail service whose image proxy
// fetched the pixel on behalf of a reader.
const (
	// EmailProxyGmail is Gmail's image proxy (User-Agent contains
	// "GoogleImageProxy", served from Google's addresses). Gmail fetches
	// when the message is opened, so it is a real open.
	EmailProxyGmail = "gmail"
	// EmailProxyYahoo is Yahoo Mail's (and AOL Mail's) image proxy
	// ("YahooMailProxy"), which also fetches at open time.
	EmailProxyYahoo = "yahoo"
	// EmailProxyAppleMPP is Apple Mail Privacy Protection: Apple's relays
	// download remote images in the background whether or not the message
	// is ever read, so these hits are machine opens (MachineOpen).
	EmailProxyAppleMPP = "apple_mpp"
)

// DefaultAppleProxyPrefixes are the networks Apple Mail Privacy Protection
// fetches are accepted from when the User-Agent is one MPP sends:
// 17.0.0.0/8 (ARIN APPLE-WWNET, Apple's since 1990) and 2620:149::/32
// (Apple's ARIN IPv6 allocation). Apple-owned space carries no third-party
// traffic, so a bare "Mozilla/5.0" from there is Apple's relay, not a
// script. MPP egress also runs through iCloud Private Relay partners
// (Akamai, Cloudflare, Fastly); AgentConfig.AppleProxyPrefixes can add
// Apple's published egress list for those.
var DefaultAppleProxyPrefixes = []netip.Prefix{
	netip.MustParsePrefix("17.0.0.0/8"),
	netip.MustParsePrefix("2620:149::/32"),
}

// uaMailProxy names the mail image proxy a User-Agent announces, or "".
// uap-core already recognizes Gmail's and Yahoo's (device.Result.MailProxy);
// the raw strings are matched too so that an older regexes.yaml, or a
// missing dev, still recognizes them.
func uaMailProxy(ua []byte, dev *device.Result) string {
	switch {
	case bytes.Contains(ua, []byte("GoogleImageProxy")):
		return EmailProxyGmail
	case bytes.Contains(ua, []byte("YahooMailProxy")):
		return EmailProxyYahoo
	case dev != nil && dev.MailProxy:
		if dev.BrowserFamily == "YahooMailProxy" {
			return EmailProxyYahoo
		}
		return EmailProxyGmail
	}
	return ""
}

// isMPPUserAgent reports whether ua is one Apple's Mail Privacy Protection
// relay sends. Observed in the wild (ua-parser/uap-core issue 509, ESP
// write-ups since September 2021): the bare "Mozilla/5.0", and Apple
// Mail's own WebKit string, which unlike Safari's has nothing after
// "(KHTML, like Gecko)" on macOS and only a "Mobile/<build>" token on
// iOS and iPadOS:
//
//	Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)
//	Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148
//
// Neither string alone proves MPP (Apple Mail with MPP off sends the
// second from the reader's own address, and the iOS form is also every
// in-app WKWebView's), so Agent requires an Apple address as well.
func isMPPUserAgent(ua []byte) bool {
	ua = bytes.TrimSpace(ua)
	if string(ua) == "Mozilla/5.0" {
		return true
	}
	rest, ok := bytes.CutPrefix(ua, []byte("Mozilla/5.0 ("))
	if !ok {
		return false
	}
	close := bytes.IndexByte(rest, ')')
	if close < 0 {
		return false
	}
	platform, rest := rest[:close], rest[close+1:]
	mobile := false
	switch {
	case bytes.HasPrefix(platform, []byte("Macintosh;")):
	case bytes.HasPrefix(platform, []byte("iPhone;")), bytes.HasPrefix(platform, []byte("iPad;")):
		mobile = true
	default:
		return false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(" AppleWebKit/"))
	if !ok {
		return false
	}
	i := bytes.IndexByte(rest, ' ')
	if i < 0 {
		return false
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(" (KHTML, like Gecko)"))
	if !ok {
		return false
	}
	if len(rest) == 0 {
		return true
	}
	if !mobile {
		return false
	}
	build, ok := bytes.CutPrefix(rest, []byte(" Mobile/"))
	return ok && len(build) > 0 && bytes.IndexByte(build, ' ') < 0
}

// newIPSet builds the address set for Apple's relays; netipx.IPSet answers
// Contains by binary search without allocating, so a long published egress
// list costs the same per record as the two default prefixes.
func newIPSet(prefixes []netip.Prefix) (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("classify: invalid Apple proxy prefix %v", p)
		}
		b.AddPrefix(p.Masked())
	}
	return b.IPSet()
}
