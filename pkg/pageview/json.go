package pageview

import (
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends p as one JSON object to b. It writes the same document
// encoding/json would for the struct tags (pageview_test proves it by
// round-tripping), without reflection or allocation when b has capacity.
func (p *Pageview) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, `"event_id":`, p.EventID)
	b = str(b, `,"event_type":`, p.EventType)
	b = str(b, `,"project_id":`, p.ProjectID)
	b = str(b, `,"api_key":`, p.APIKey)
	b = str(b, `,"received_at":`, p.ReceivedAt)
	b = str(b, `,"page_url":`, p.PageURL)
	b = str(b, `,"page_host":`, p.PageHost)
	b = str(b, `,"page_path":`, p.PagePath)
	b = str(b, `,"referrer_url":`, p.ReferrerURL)
	b = str(b, `,"referrer_host":`, p.ReferrerHost)
	b = str(b, `,"utm_source":`, p.UTMSource)
	b = str(b, `,"utm_medium":`, p.UTMMedium)
	b = str(b, `,"utm_campaign":`, p.UTMCampaign)
	b = str(b, `,"utm_term":`, p.UTMTerm)
	b = str(b, `,"utm_content":`, p.UTMContent)
	b = str(b, `,"utm_id":`, p.UTMID)
	b = append(b, `,"click_ids":{`...)
	for i, kv := range p.ClickIDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, kv.Key)
		b = append(b, ':')
		b = AppendString(b, kv.Value)
	}
	b = append(b, '}')
	b = str(b, `,"click_id":`, p.ClickID)
	b = str(b, `,"click_id_param":`, p.ClickIDParam)
	b = str(b, `,"click_platform":`, p.ClickPlatform)
	b = str(b, `,"geo_country_code":`, p.GeoCountryCode)
	b = str(b, `,"geo_country":`, p.GeoCountry)
	b = str(b, `,"geo_region_code":`, p.GeoRegionCode)
	b = str(b, `,"geo_region":`, p.GeoRegion)
	b = str(b, `,"geo_city":`, p.GeoCity)
	b = str(b, `,"geo_postal_code":`, p.GeoPostalCode)
	b = float(b, `,"geo_latitude":`, p.GeoLatitude)
	b = float(b, `,"geo_longitude":`, p.GeoLongitude)
	b = str(b, `,"geo_timezone":`, p.GeoTimezone)
	b = str(b, `,"user_agent":`, p.UserAgent)
	b = str(b, `,"browser_family":`, p.BrowserFamily)
	b = str(b, `,"browser_version":`, p.BrowserVersion)
	b = str(b, `,"os_family":`, p.OSFamily)
	b = str(b, `,"os_version":`, p.OSVersion)
	b = str(b, `,"device_type":`, p.DeviceType)
	b = str(b, `,"device_brand":`, p.DeviceBrand)
	b = str(b, `,"device_model":`, p.DeviceModel)
	b = append(b, `,"geo_asn":`...)
	b = strconv.AppendUint(b, uint64(p.GeoASN), 10)
	b = str(b, `,"geo_as_org":`, p.GeoASOrg)
	b = str(b, `,"geo_source":`, p.GeoSource)
	b = boolean(b, `,"is_bot":`, p.IsBot)
	b = str(b, `,"bot_name":`, p.BotName)
	b = str(b, `,"email_proxy":`, p.EmailProxy)
	b = boolean(b, `,"machine_open":`, p.MachineOpen)
	b = str(b, `,"email_campaign_id":`, p.EmailCampaignID)
	b = str(b, `,"email_recipient_id":`, p.EmailRecipientID)
	b = str(b, `,"referrer_medium":`, p.ReferrerMedium)
	b = str(b, `,"referrer_source":`, p.ReferrerSource)
	b = str(b, `,"referrer_term":`, p.ReferrerTerm)
	b = str(b, `,"channel":`, p.Channel)
	b = str(b, `,"visitor_id":`, p.VisitorID)
	b = str(b, `,"session_id":`, p.SessionID)
	b = boolean(b, `,"session_start":`, p.SessionStart)
	b = append(b, `,"session_seq":`...)
	b = strconv.AppendInt(b, int64(p.SessionSeq), 10)
	b = str(b, `,"ip":`, p.IP)
	b = str(b, `,"ip_mode":`, p.IPMode)
	b = str(b, `,"accept_language":`, p.AcceptLanguage)
	b = boolean(b, `,"dnt":`, p.DNT)
	b = boolean(b, `,"gpc":`, p.GPC)
	b = boolean(b, `,"prefetch":`, p.Prefetch)
	b = str(b, `,"tracking_host":`, p.TrackingHost)
	b = str(b, `,"edge_instance":`, p.EdgeInstance)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(p.SchemaVersion), 10)
	return append(b, '}')
}

// MarshalJSON makes encoding/json produce the same document as AppendJSON
// (click_ids as an object).
func (p *Pageview) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// UnmarshalJSON decodes click_ids from a JSON object into the ordered
// slice; the rest uses the struct tags. It exists for consumers and tests.
func (p *Pageview) UnmarshalJSON(data []byte) error {
	type plain Pageview
	aux := struct {
		*plain
		ClickIDs map[string]string `json:"click_ids"`
	}{plain: (*plain)(p)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	p.ClickIDs = p.ClickIDs[:0]
	for k, v := range aux.ClickIDs {
		p.ClickIDs = append(p.ClickIDs, KV{k, v})
	}
	return nil
}

func str(b []byte, key, v string) []byte {
	b = append(b, key...)
	return AppendString(b, v)
}

func boolean(b []byte, key string, v bool) []byte {
	b = append(b, key...)
	return strconv.AppendBool(b, v)
}

func float(b []byte, key string, v *float64) []byte {
	b = append(b, key...)
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, *v, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so every record is valid JSON whatever the client
// sent; <, > and & are escaped so the output is safe to embed in HTML.
// The output is byte for byte what encoding/json.Marshal produces for s.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending output that needs no escaping
	for i := 0; ; {
		// Almost every byte the enricher writes (URLs, User-Agents, names)
		// is plain ASCII, so find the next byte that needs attention a word
		// at a time and copy the whole run with one append below.
		i = skipSafe(s, i)
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default: // other control characters, '<', '>', '&'
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		// Any other valid multi-byte rune is copied as is.
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// safeASCII[c] reports whether byte c is copied to a JSON string unchanged
// without looking at its neighbours: printable ASCII other than " \ < > &.
// It scans strings too short for a whole word.
var safeASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// Byte-lane constants for the word-at-a-time scan: lanes*x repeats byte x in
// all eight lanes of a uint64; highBits is the top bit of each lane.
const (
	lanes    = 0x0101010101010101
	highBits = 0x8080808080808080
)

// load64 returns s[i:i+8] as a little-endian word, so s[i] is the lowest
// lane. The compiler combines the eight byte loads into one 64-bit load; it
// avoids unsafe and the []byte conversion encoding/binary would need.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// specialMask returns the top bit of every lane of x that holds a byte
// AppendString cannot copy as is: < 0x20, >= 0x80, or one of " \ < > &.
//
// It is the classic "has zero byte" trick: with v = x XOR lanes*c, (v -
// lanes) sets the top bit of the lanes where x equals c. The classic form
// also needs &^v to drop lanes whose top bit was already set; here those are
// bytes >= 0x80, which must be flagged anyway, so x itself is ORed in
// instead. Equality tests are folded pairwise: '"' (0x22) and '&' (0x26)
// differ only in bit 0x04, '<' (0x3c) and '>' (0x3e) only in bit 0x02, so
// OR-ing that bit in before comparing with the higher one matches both at
// once. x - lanes*0x20 sets the top bit of the lanes below 0x20.
//
// A subtraction borrows out of a lane only when that lane is flagged, and a
// borrow can flag the lane above it, so only the lowest set bit is exact.
// That is all the caller uses.
func specialMask(x uint64) uint64 {
	quoteAmp := x | lanes*0x04 ^ lanes*'&'
	angle := x | lanes*0x02 ^ lanes*'>'
	backslash := x ^ lanes*'\\'
	return ((quoteAmp - lanes) | (angle - lanes) | (backslash - lanes) | (x - lanes*0x20) | x) & highBits
}

// skipSafe returns the index of the first byte at or after i that
// AppendString must escape or decode as UTF-8, or len(s) if there is none.
func skipSafe(s string, i int) int {
	if len(s) < 8 {
		for i < len(s) && safeASCII[s[i]] {
			i++
		}
		return i
	}
	for ; i+8 <= len(s); i += 8 {
		if m := specialMask(load64(s, i)); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i == len(s) {
		return i
	}
	// Fewer than 8 bytes remain: test the last word of s instead, which
	// overlaps d bytes already consumed. Those may include escaped specials
	// whose borrows would spill into later lanes, so they are replaced by
	// spaces (safe, and no borrow) before the test, then shifted out.
	d := uint(8 - (len(s) - i))
	keep := ^uint64(0) << (8 * d)
	m := specialMask(load64(s, len(s)-8)&keep|lanes*' '&^keep) >> (8 * d)
	if m == 0 {
		return len(s)
	}
	return i + bits.TrailingZeros64(m)/8
}
