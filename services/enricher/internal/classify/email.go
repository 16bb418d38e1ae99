package classify

// EventEmailOpen is the event type of an email open.
const EventEmailOpen = "email_open"

// Pixel parameters that identify an email send. The short forms keep
// tracking URLs in emails short; the long forms are for readability. Both
// are accepted, short first.
const (
	ParamEmailCampaign      = "ecid"               // the campaign (mailing) the email belongs to
	ParamEmailCampaignLong  = "email_campaign_id"  // same as ecid
	ParamEmailRecipient     = "erid"               // the recipient, as the sender identifies them
	ParamEmailRecipientLong = "email_recipient_id" // same as erid
	// ParamUTMCampaign is the fallback for the campaign of an email open,
	// since many senders tag the pixel with their UTM campaign only.
	ParamUTMCampaign = "utm_campaign"
)

// defaultEvent is campaign.DefaultEvent, the type of a hit without "e".
// It is repeated rather than imported to keep this file free of the
// campaign package; a test checks they agree.
const defaultEvent = "pageview"

// EmailEvent decides the event type of a hit and its email identifiers.
//
// eventType is the validated "e" parameter (campaign.Result.EventType,
// "pageview" when absent). params looks up a pixel parameter by name (it
// may be nil); to get the utm_campaign fallback it must also answer
// "utm_campaign", which campaign.Result keeps in UTM rather than Params.
// agent is Agent's result for the hit (may be nil).
//
// Rules:
//   - e=open and e=email_open become EventEmailOpen;
//   - a hit through a mail image proxy (Gmail, Yahoo, Apple MPP) whose
//     event is the default "pageview" is EventEmailOpen too: the only
//     pixel a mail proxy fetches is one embedded in an email, and senders
//     often embed the plain pixel. Apple MPP fetches are therefore email
//     opens with agent.MachineOpen set. An explicit other event is kept;
//   - campaignID is ecid, else email_campaign_id, else (for email opens
//     only, so that UTM-tagged web pages do not get one) utm_campaign;
//   - recipientID is erid, else email_recipient_id.
//
// Identifiers are returned for any event, so a landing page reached from an
// email link that carries them is attributable to the send. EmailEvent
// allocates nothing.
func EmailEvent(eventType string, params func(name string) (string, bool), agent *AgentResult) (event, campaignID, recipientID string) {
	event = eventType
	switch {
	case eventType == "open" || eventType == EventEmailOpen:
		event = EventEmailOpen
	case agent != nil && agent.EmailProxy != "" && (eventType == "" || eventType == defaultEvent):
		event = EventEmailOpen
	}
	if params == nil {
		return event, "", ""
	}
	campaignID = firstParam(params, ParamEmailCampaign, ParamEmailCampaignLong)
	if campaignID == "" && event == EventEmailOpen {
		campaignID = firstParam(params, ParamUTMCampaign, "")
	}
	recipientID = firstParam(params, ParamEmailRecipient, ParamEmailRecipientLong)
	return event, campaignID, recipientID
}

// firstParam returns the first non-empty value of the parameters a and b.
func firstParam(params func(string) (string, bool), a, b string) string {
	if v, ok := params(a); ok && v != "" {
		return v
	}
	if b != "" {
		if v, ok := params(b); ok && v != "" {
			return v
		}
	}
	return ""
}
