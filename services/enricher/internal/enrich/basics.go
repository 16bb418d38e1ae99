package enrich

import (
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
)

// Basics copies the request metadata the edge captured: ids, times, the
// tracking host, privacy signals and the prefetch flag.
var Basics = StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error {
	pv.EventID = s.Format(raw.EventID.AppendString)
	pv.EventType = "pageview"
	pv.ProjectID = Str(raw.ProjectID)
	pv.APIKey = Str(raw.APIKey)
	pv.ReceivedAt = s.Format(func(b []byte) []byte {
		return time.Unix(0, raw.ReceivedAtNs).UTC().AppendFormat(b, time.RFC3339Nano)
	})
	pv.UserAgent = Str(raw.UserAgent)
	pv.AcceptLanguage = Str(raw.AcceptLanguage)
	pv.DNT, pv.GPC, pv.Prefetch = raw.DNT, raw.GPC, raw.Prefetch
	pv.TrackingHost = Str(raw.Host)
	pv.EdgeInstance = Str(raw.EdgeInstance)
	pv.SchemaVersion = pageview.SchemaVersion
	return nil
})
