package classify

import (
	"strings"
	"unsafe"
)

// Channels, the values Channel returns. They follow GA4's default channel
// group, collapsed to the channels a pixel can tell apart.
const (
	ChannelPaidSearch    = "paid_search"    // search ads (gclid, msclkid, utm_medium=cpc)
	ChannelOrganicSearch = "organic_search" // a search engine's results
	ChannelPaidSocial    = "paid_social"    // social network ads (ttclid, li_fat_id, cpc on a social source)
	ChannelOrganicSocial = "organic_social" // posts and shares on social networks
	ChannelEmail         = "email"          // email opens and links from emails
	ChannelAffiliates    = "affiliates"     // affiliate networks (irclickid, utm_medium=affiliate)
	ChannelDisplay       = "display"        // banner, programmatic and native ads (dclid, cpm)
	ChannelReferral      = "referral"       // links from other sites
	ChannelDirect        = "direct"         // no referrer, or a navigation inside the site
	// ChannelUnassigned is GA4's "Unassigned": the hit carries a
	// utm_medium that no rule recognizes (qr, print, sms, push, ...).
	// Guessing from the referrer would overrule what the sender tagged.
	ChannelUnassigned = "unassigned"
)

// ChannelInput is what Channel decides from, most trusted first.
type ChannelInput struct {
	// EmailOpen is set for an email open: EmailEvent returned
	// EventEmailOpen, or the hit came through a mail image proxy. It is a
	// fact about the hit, not an attribution guess, so it wins.
	EmailOpen bool
	// ClickIDParam is the primary click-ID parameter
	// (campaign.Result.ClickIDParam, canonical case, e.g. "gclid", "ScCid").
	ClickIDParam string
	// UTMSource and UTMMedium are utm_source and utm_medium as sent;
	// they are compared ASCII-case-insensitively and trimmed.
	UTMSource, UTMMedium string
	// ReferrerMedium and ReferrerSource are Referrer's result.
	ReferrerMedium, ReferrerSource string
}

// clickChannels maps click-ID parameters that ad platforms add to ad clicks
// only. fbclid is missing on purpose: Meta appends it to every outbound
// link from Facebook and Instagram, organic posts included, so it says
// "came from Meta", not "paid"; see Channel. igshid, gclsrc and the
// other non-ad parameters decide nothing.
var clickChannels = map[string]string{
	"gclid":          ChannelPaidSearch,
	"gbraid":         ChannelPaidSearch,
	"wbraid":         ChannelPaidSearch,
	"gad_source":     ChannelPaidSearch, // Google Ads click without a gclid
	"gad_campaignid": ChannelPaidSearch,
	"msclkid":        ChannelPaidSearch,
	"yclid":          ChannelPaidSearch,
	"dclid":          ChannelDisplay,
	"ttclid":         ChannelPaidSocial,
	"li_fat_id":      ChannelPaidSocial,
	"twclid":         ChannelPaidSocial,
	"ScCid":          ChannelPaidSocial,
	"epik":           ChannelPaidSocial,
	"rdt_cid":        ChannelPaidSocial,
	"qclid":          ChannelPaidSocial,
	"irclickid":      ChannelAffiliates,
	"mc_cid":         ChannelEmail,
	"mc_eid":         ChannelEmail,
	"_kx":            ChannelEmail,
}

// Channel assigns a hit to a marketing channel. The rules, first match
// wins (docs/classification.md has them as a table):
//
//  1. an email open → email;
//  2. an ad-only click ID (clickChannels);
//  3. UTM tags, in GA4's order: source "(direct)" → direct; paid medium
//     (cpc, ppc, retargeting, paid*, or containing "cp" but not cpm)
//     → paid_social for a social source or a "social" in the medium,
//     else paid_search; display/banner/expandable/interstitial/cpm →
//     display; social source, or medium social/social-network/
//     social-media/sm → organic_social; medium organic, or a search
//     source → organic_search; email/e-mail/e_mail/newsletter medium or
//     source → email; affiliate(s) → affiliates; referral/app/link →
//     referral; any other medium → unassigned; a utm_source alone that is
//     not a known source falls through;
//  4. fbclid without deciding UTM tags → organic_social;
//  5. the referrer medium: search → organic_search, social →
//     organic_social, email → email, paid → display (ad servers: the
//     data set's paid hosts are display networks; search ads arrive with
//     gclid/msclkid), unknown → referral, internal and direct → direct.
//
// Channel does not allocate.
func Channel(in ChannelInput) string {
	if in.EmailOpen {
		return ChannelEmail
	}
	if ch, ok := clickChannels[in.ClickIDParam]; ok {
		return ch
	}
	if ch := utmChannel(in.UTMSource, in.UTMMedium); ch != "" {
		return ch
	}
	if in.ClickIDParam == "fbclid" {
		return ChannelOrganicSocial
	}
	switch in.ReferrerMedium {
	case MediumSearch:
		return ChannelOrganicSearch
	case MediumSocial:
		return ChannelOrganicSocial
	case MediumEmail:
		return ChannelEmail
	case MediumPaid:
		return ChannelDisplay
	case MediumUnknown:
		return ChannelReferral
	}
	// Internal: a navigation inside the site whose first hit is not in
	// hand; like GA4, which ignores self-referrals, the hit counts as
	// direct (the session's first hit carries the real channel).
	return ChannelDirect
}

// maxTagLen bounds the UTM values Channel normalizes on the stack; longer
// values are no channel name any rule knows.
const maxTagLen = 64

// utmChannel applies the UTM rules; "" means the tags decide nothing.
func utmChannel(rawSource, rawMedium string) string {
	rawSource, rawMedium = strings.TrimSpace(rawSource), strings.TrimSpace(rawMedium)
	if rawSource == "" && rawMedium == "" {
		return ""
	}
	var sb, mb [maxTagLen]byte
	source, sok := lowerTrim(sb[:0], rawSource)
	medium, mok := lowerTrim(mb[:0], rawMedium)
	if !mok {
		return ChannelUnassigned // an overlong medium matches no rule
	}
	cat := ""
	if sok {
		cat = sourceCategory(source)
	}
	m := bytesView(medium)
	if string(source) == "(direct)" && (m == "" || m == "(none)" || m == "(not set)") {
		return ChannelDirect
	}
	switch {
	case isPaidMedium(m):
		if cat == MediumSocial || strings.Contains(m, "social") {
			return ChannelPaidSocial
		}
		return ChannelPaidSearch
	case m == "display" || m == "banner" || m == "expandable" || m == "interstitial" || m == "cpm":
		return ChannelDisplay
	case cat == MediumSocial || m == "social" || m == "social-network" || m == "social-media" ||
		m == "sm" || m == "social network" || m == "social media":
		return ChannelOrganicSocial
	case m == "organic" || cat == MediumSearch:
		return ChannelOrganicSearch
	case isEmailTag(m) || isEmailTag(bytesView(source)) || cat == MediumEmail:
		return ChannelEmail
	case m == "affiliate" || m == "affiliates":
		return ChannelAffiliates
	case m == "referral" || m == "app" || m == "link":
		return ChannelReferral
	case m == "":
		return "" // a utm_source alone, of no known kind: let the referrer decide
	}
	return ChannelUnassigned
}

// isPaidMedium is GA4's ^(.*cp.*|ppc|retargeting|paid.*)$ without cpm,
// which GA4's Display rule claims first for sources that are not search
// engines, plus the "paidsearch" spellings.
func isPaidMedium(m string) bool {
	switch {
	case m == "cpm":
		return false
	case strings.Contains(m, "cp"), m == "ppc", m == "retargeting", strings.HasPrefix(m, "paid"):
		return true
	}
	return false
}

func isEmailTag(s string) bool {
	switch s {
	case "email", "e-mail", "e_mail", "e mail", "newsletter", "mail":
		return true
	}
	return false
}

// sourceCategory says whether a lower-case utm_source names a search
// engine, social network or mail service ("" if none is known), from the
// referrer data set's hosts and source names plus common short forms.
func sourceCategory(source []byte) string {
	t := referrers()
	if m, ok := t.categories[string(source)]; ok {
		return m
	}
	if rest, ok := strings.CutPrefix(bytesView(source), "www."); ok {
		if m, ok := t.categories[rest]; ok {
			return m
		}
	}
	return ""
}

// lowerTrim appends the ASCII-lower-cased, space-trimmed s to dst; ok is
// false if it does not fit in dst's capacity.
func lowerTrim(dst []byte, s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) > cap(dst) {
		return dst, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// bytesView returns b as a string without copying. Only for the stack
// buffers of utmChannel, which are neither changed nor kept while the view
// is used: a conversion would allocate for values over 32 bytes.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
