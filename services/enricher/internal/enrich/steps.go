package enrich

import (
	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/campaign"
	"github.com/pixelstream/pixelstream/services/enricher/internal/classify"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
)

// Shared holds one record's intermediate results, so later steps build on
// earlier ones (classification needs the parsed User-Agent and URLs)
// without parsing twice. Steps built from one Shared must run in one
// goroutine, in the order Campaign, Geo, Device, Classify.
type Shared struct {
	Campaign campaign.Result
	Geo      geo.Result
	HasGeo   bool
	Device   device.Result
	Agent    classify.AgentResult
	Referrer classify.ReferrerResult
}

// Campaign reads the page URL, referrer, event type, UTM parameters and
// click IDs from the pixel's query string and the Referer header.
func Campaign(sh *Shared) Step {
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		res := &sh.Campaign
		campaign.Parse(raw.Query, raw.Referer, res)
		pv.EventType = res.EventType
		pv.PageURL, pv.PageHost, pv.PagePath = res.PageURL, res.PageHost, res.PagePath
		pv.ReferrerURL, pv.ReferrerHost = res.ReferrerURL, res.ReferrerHost
		pv.UTMSource = res.UTM[campaign.UTMSource]
		pv.UTMMedium = res.UTM[campaign.UTMMedium]
		pv.UTMCampaign = res.UTM[campaign.UTMCampaign]
		pv.UTMTerm = res.UTM[campaign.UTMTerm]
		pv.UTMContent = res.UTM[campaign.UTMContent]
		pv.UTMID = res.UTM[campaign.UTMID]
		for _, c := range res.ClickIDs {
			pv.ClickIDs = append(pv.ClickIDs, pageview.KV{Key: c.Param, Value: c.Value})
		}
		pv.ClickID, pv.ClickIDParam, pv.ClickPlatform = res.ClickID, res.ClickIDParam, res.ClickPlatform
		return nil
	})
}

// Geo resolves the client IP to a location. An IP the database does not
// know leaves the fields empty; a lookup never fails the record.
func Geo(r *geo.Resolver, sh *Shared) Step {
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		res := &sh.Geo
		sh.HasGeo = r != nil && raw.ClientIP.IsValid() && r.Lookup(raw.ClientIP, res)
		if !sh.HasGeo {
			return nil
		}
		pv.GeoSource = "ip"
		pv.GeoCountryCode = res.CountryCode
		pv.GeoCountry = res.Country
		pv.GeoRegionCode = res.RegionCode
		pv.GeoRegion = res.Region
		pv.GeoCity = res.City
		pv.GeoPostalCode = res.PostalCode
		pv.GeoTimezone = res.TimeZone
		pv.GeoASN, pv.GeoASOrg = res.ASN, res.ASOrg
		if res.HasLocation {
			// Pointers into the shared result: valid until the next
			// record's lookup, which happens after this one is encoded.
			pv.GeoLatitude, pv.GeoLongitude = &res.Latitude, &res.Longitude
		}
		return nil
	})
}

// Device parses the User-Agent into browser, OS and device.
func Device(p *device.Parser, sh *Shared) Step {
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		res := &sh.Device
		p.Parse(raw.UserAgent, res)
		pv.BrowserFamily = res.BrowserFamily
		pv.BrowserVersion = res.BrowserVersion
		pv.OSFamily = res.OSFamily
		pv.OSVersion = res.OSVersion
		pv.DeviceType = res.DeviceType
		pv.DeviceBrand = res.DeviceBrand
		pv.DeviceModel = res.DeviceModel
		return nil
	})
}

// DeviceTypeEmailProxy is the device_type of hits fetched by a mail image
// proxy: the reader's device is unknown.
const DeviceTypeEmailProxy = "email_proxy"

// Classify tells people from machines (mail proxies first, then bots),
// classifies the referrer, assigns the channel and recognises email opens.
func Classify(c *classify.AgentClassifier, sh *Shared) Step {
	params := func(n string) (string, bool) {
		if n == classify.ParamUTMCampaign {
			v := sh.Campaign.UTM[campaign.UTMCampaign]
			return v, v != ""
		}
		return sh.Campaign.Param(n)
	}
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		ag, res := &sh.Agent, &sh.Campaign
		c.Classify(raw.UserAgent, &sh.Device, raw.ClientIP, ag)
		pv.IsBot, pv.BotName, pv.EmailProxy, pv.MachineOpen = ag.IsBot, ag.BotName, ag.EmailProxy, ag.MachineOpen
		if ag.EmailProxy != "" {
			pv.DeviceType = DeviceTypeEmailProxy
			if pv.GeoSource != "" {
				pv.GeoSource = "email_proxy"
			}
		}
		pv.EventType, pv.EmailCampaignID, pv.EmailRecipientID = classify.EmailEvent(res.EventType, params, ag)
		classify.Referrer(res.ReferrerURL, res.ReferrerHost, res.PageHost, &sh.Referrer)
		pv.ReferrerMedium, pv.ReferrerSource, pv.ReferrerTerm = sh.Referrer.Medium, sh.Referrer.Source, sh.Referrer.Term
		pv.Channel = classify.Channel(classify.ChannelInput{
			EmailOpen:      pv.EventType == classify.EventEmailOpen || ag.EmailProxy != "",
			ClickIDParam:   res.ClickIDParam,
			UTMSource:      res.UTM[campaign.UTMSource],
			UTMMedium:      res.UTM[campaign.UTMMedium],
			ReferrerMedium: sh.Referrer.Medium,
			ReferrerSource: sh.Referrer.Source,
		})
		return nil
	})
}
