package enrich

import (
	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
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
