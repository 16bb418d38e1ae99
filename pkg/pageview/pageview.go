// Package pageview defines the enriched record that the enricher writes to
// the `pageviews.enriched` topic as one JSON object per hit, and its
// allocation-free JSON encoder. docs/schema.md documents every field for
// downstream teams; proto/pixelstream/v1/pageview.proto is the same schema.
package pageview

// SchemaVersion is written into every enriched record as schema_version.
// Fields are only ever added within a version.
const SchemaVersion = 1

// Pageview is one enriched hit. Every field is always present in the JSON
// output: empty strings where a value is unknown, null for unknown
// coordinates (0,0 is a real place).
type Pageview struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	ProjectID string `json:"project_id"`
	APIKey    string `json:"api_key"`
	// ReceivedAt is the edge's receive time, RFC 3339 with nanoseconds, UTC.
	ReceivedAt string `json:"received_at"`

	PageURL      string `json:"page_url"`
	PageHost     string `json:"page_host"`
	PagePath     string `json:"page_path"`
	ReferrerURL  string `json:"referrer_url"`
	ReferrerHost string `json:"referrer_host"`

	UTMSource   string `json:"utm_source"`
	UTMMedium   string `json:"utm_medium"`
	UTMCampaign string `json:"utm_campaign"`
	UTMTerm     string `json:"utm_term"`
	UTMContent  string `json:"utm_content"`
	UTMID       string `json:"utm_id"`

	// ClickIDs maps each click-ID parameter found (canonical name) to its value.
	ClickIDs      []KV   `json:"click_ids"`
	ClickID       string `json:"click_id"`
	ClickIDParam  string `json:"click_id_param"`
	ClickPlatform string `json:"click_platform"`

	GeoCountryCode string   `json:"geo_country_code"`
	GeoCountry     string   `json:"geo_country"`
	GeoRegionCode  string   `json:"geo_region_code"`
	GeoRegion      string   `json:"geo_region"`
	GeoCity        string   `json:"geo_city"`
	GeoPostalCode  string   `json:"geo_postal_code"`
	GeoLatitude    *float64 `json:"geo_latitude"`
	GeoLongitude   *float64 `json:"geo_longitude"`
	GeoTimezone    string   `json:"geo_timezone"`

	UserAgent      string `json:"user_agent"`
	BrowserFamily  string `json:"browser_family"`
	BrowserVersion string `json:"browser_version"`
	OSFamily       string `json:"os_family"`
	OSVersion      string `json:"os_version"`
	DeviceType     string `json:"device_type"`
	DeviceBrand    string `json:"device_brand"`
	DeviceModel    string `json:"device_model"`

	GeoASN   uint32 `json:"geo_asn"`
	GeoASOrg string `json:"geo_as_org"`
	// GeoSource says whose location the geo fields describe: "ip" (the
	// visitor's), "email_proxy" (a mail image proxy's, not the reader's) or
	// "" (no location).
	GeoSource string `json:"geo_source"`

	IsBot      bool   `json:"is_bot"`
	BotName    string `json:"bot_name"`
	EmailProxy string `json:"email_proxy"`
	// MachineOpen marks an email open fetched by a privacy proxy (Apple
	// Mail Privacy Protection) whether or not anyone read the mail.
	MachineOpen      bool   `json:"machine_open"`
	EmailCampaignID  string `json:"email_campaign_id"`
	EmailRecipientID string `json:"email_recipient_id"`

	ReferrerMedium string `json:"referrer_medium"`
	ReferrerSource string `json:"referrer_source"`
	ReferrerTerm   string `json:"referrer_term"`
	Channel        string `json:"channel"`

	VisitorID    string `json:"visitor_id"`
	SessionID    string `json:"session_id"`
	SessionStart bool   `json:"session_start"`
	SessionSeq   int    `json:"session_seq"`

	IP             string `json:"ip"`
	IPMode         string `json:"ip_mode"`
	AcceptLanguage string `json:"accept_language"`
	DNT            bool   `json:"dnt"`
	GPC            bool   `json:"gpc"`
	Prefetch       bool   `json:"prefetch"`
	TrackingHost   string `json:"tracking_host"`
	EdgeInstance   string `json:"edge_instance"`
	SchemaVersion  int    `json:"schema_version"`
}

// KV is one click-ID parameter and its value, kept in a slice rather than a
// map so that encoding needs no sorting or allocation; it is written as a
// JSON object member.
type KV struct {
	Key, Value string
}

// Reset clears p for reuse, keeping the ClickIDs backing array.
func (p *Pageview) Reset() {
	ids := p.ClickIDs[:0]
	*p = Pageview{ClickIDs: ids}
}
