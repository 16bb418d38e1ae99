package classify

import (
	"testing"

	"github.com/pixelstream/pixelstream/services/enricher/internal/campaign"
)

// paramsOf adapts a campaign.Result the way the enricher should: pixel
// parameters from Params, utm_campaign from UTM.
func paramsOf(res *campaign.Result) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if name == ParamUTMCampaign {
			v := res.UTM[campaign.UTMCampaign]
			return v, v != ""
		}
		return res.Param(name)
	}
}

func TestEmailEvent(t *testing.T) {
	gmail := &AgentResult{EmailProxy: EmailProxyGmail}
	mpp := &AgentResult{EmailProxy: EmailProxyAppleMPP, MachineOpen: true}
	person := &AgentResult{}
	cases := []struct {
		name                     string
		query                    string
		agent                    *AgentResult
		event, campaign, recipID string
	}{
		{"e=open", "e=open&ecid=spring-24&erid=u-42", person, EventEmailOpen, "spring-24", "u-42"},
		{"e=email_open long names", "e=email_open&email_campaign_id=c1&email_recipient_id=r1", person, EventEmailOpen, "c1", "r1"},
		{"e=OPEN case-folded", "e=OPEN&ecid=c1", nil, EventEmailOpen, "c1", ""},
		{"short name wins", "e=open&ecid=short&email_campaign_id=long", person, EventEmailOpen, "short", ""},
		{"utm_campaign fallback", "e=open&utm_campaign=black-friday&erid=r9", person, EventEmailOpen, "black-friday", "r9"},
		{"gmail proxy without e", "ecid=c2&erid=r2", gmail, EventEmailOpen, "c2", "r2"},
		{"apple mpp without e", "utm_campaign=weekly", mpp, EventEmailOpen, "weekly", ""},
		{"proxy keeps explicit event", "e=purchase&ecid=c3", gmail, "purchase", "c3", ""},
		{"pageview from email link", "ecid=c4&erid=r4&utm_campaign=x", person, campaign.DefaultEvent, "c4", "r4"},
		{"no utm fallback for web pages", "utm_campaign=x", person, campaign.DefaultEvent, "", ""},
		{"plain pageview", "", nil, campaign.DefaultEvent, "", ""},
		{"empty id skipped", "e=open&ecid=&email_campaign_id=c5", person, EventEmailOpen, "c5", ""},
	}
	var res campaign.Result
	for _, tc := range cases {
		campaign.Parse([]byte(tc.query), nil, &res)
		ev, cid, rid := EmailEvent(res.EventType, paramsOf(&res), tc.agent)
		if ev != tc.event || cid != tc.campaign || rid != tc.recipID {
			t.Errorf("%s: got (%q, %q, %q), want (%q, %q, %q)", tc.name, ev, cid, rid, tc.event, tc.campaign, tc.recipID)
		}
	}
	if ev, cid, rid := EmailEvent("open", nil, nil); ev != EventEmailOpen || cid != "" || rid != "" {
		t.Errorf("nil params: %q %q %q", ev, cid, rid)
	}
	if defaultEvent != campaign.DefaultEvent {
		t.Errorf("defaultEvent %q, campaign.DefaultEvent %q", defaultEvent, campaign.DefaultEvent)
	}
}

func TestEmailEventNoAllocs(t *testing.T) {
	var res campaign.Result
	campaign.Parse([]byte("e=open&ecid=c1&erid=r1"), nil, &res)
	agent := &AgentResult{EmailProxy: EmailProxyGmail}
	if n := testing.AllocsPerRun(100, func() { EmailEvent(res.EventType, res.Param, agent) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
