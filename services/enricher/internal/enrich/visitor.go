package enrich

import (
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/dedup"
	"github.com/pixelstream/pixelstream/services/enricher/internal/session"
	"github.com/pixelstream/pixelstream/services/enricher/internal/visitor"
)

// Dedup withholds a hit whose event_id was already seen within the window:
// a producer retry at the edge or a redelivery. It runs before any
// stateful step so a duplicate does not advance a session.
func Dedup(w *dedup.Window) Step {
	return StepFunc(func(raw *hit.Raw, _ *pageview.Pageview, _ *Scratch) error {
		if w.Seen(raw.EventID, time.Unix(0, raw.ReceivedAtNs)) {
			return &Skip{Reason: "duplicate"}
		}
		return nil
	})
}

// Visitor sets the cookieless visitor id and the session fields. Both use
// the full client IP, so it runs before IPPolicy.
func Visitor(salts *visitor.SaltStore, sessions *session.Tracker) Step {
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error {
		at := time.Unix(0, raw.ReceivedAtNs)
		vid, ok := salts.ID(raw.ProjectID, raw.ClientIP, raw.UserAgent, at)
		if !ok {
			// No salt held at all (counted by the salt store): the hit is
			// still published, without visitor or session.
			return nil
		}
		pv.VisitorID = s.Format(vid.AppendHex)
		var prev visitor.ID
		if sessions.NeedsPrevious(at) {
			prev, _ = salts.PreviousID(raw.ProjectID, raw.ClientIP, raw.UserAgent, at)
		}
		sid, start, seq := sessions.Observe(vid, prev, raw.EventID, at)
		pv.SessionID = s.Format(sid.AppendString)
		pv.SessionStart, pv.SessionSeq = start, seq
		return nil
	})
}
