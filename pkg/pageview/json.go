package pageview

import (
	"encoding/json"
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
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
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
			default:
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
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
