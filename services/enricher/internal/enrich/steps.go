package enrich

import (
	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/campaign"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
)

// Geo resolves the client IP to a location. An IP the database does not
// know leaves the fields empty; a lookup never fails the record.
func Geo(r *geo.Resolver) Step {
	var res geo.Result
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		if r == nil || !raw.ClientIP.IsValid() || !r.Lookup(raw.ClientIP, &res) {
			return nil
		}
		pv.GeoCountryCode = res.CountryCode
		pv.GeoCountry = res.Country
		pv.GeoRegionCode = res.RegionCode
		pv.GeoRegion = res.Region
		pv.GeoCity = res.City
		pv.GeoPostalCode = res.PostalCode
		pv.GeoTimezone = res.TimeZone
		if res.HasLocation {
			// Pointers into the step's own result: valid until the next
			// lookup, which happens only after this record is encoded.
			pv.GeoLatitude, pv.GeoLongitude = &res.Latitude, &res.Longitude
		}
		return nil
	})
}

// Device parses the User-Agent into browser, OS and device.
func Device(p *device.Parser) Step {
	var res device.Result
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		p.Parse(raw.UserAgent, &res)
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

// Campaign reads the page URL, referrer, event type, UTM parameters and
// click IDs from the pixel's query string and the Referer header.
func Campaign() Step {
	var res campaign.Result
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, _ *Scratch) error {
		campaign.Parse(raw.Query, raw.Referer, &res)
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
