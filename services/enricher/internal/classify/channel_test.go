package classify

import "testing"

func TestChannel(t *testing.T) {
	cases := []struct {
		name string
		in   ChannelInput
		want string
	}{
		// 1. Email opens win over everything.
		{"email open", ChannelInput{EmailOpen: true, ClickIDParam: "gclid", UTMMedium: "cpc"}, ChannelEmail},
		// 2. Ad-only click IDs.
		{"gclid", ChannelInput{ClickIDParam: "gclid", UTMSource: "newsletter", UTMMedium: "email"}, ChannelPaidSearch},
		{"gbraid", ChannelInput{ClickIDParam: "gbraid"}, ChannelPaidSearch},
		{"wbraid", ChannelInput{ClickIDParam: "wbraid"}, ChannelPaidSearch},
		{"gad_source", ChannelInput{ClickIDParam: "gad_source"}, ChannelPaidSearch},
		{"gad_campaignid", ChannelInput{ClickIDParam: "gad_campaignid"}, ChannelPaidSearch},
		{"msclkid", ChannelInput{ClickIDParam: "msclkid", ReferrerMedium: MediumSearch}, ChannelPaidSearch},
		{"yclid", ChannelInput{ClickIDParam: "yclid"}, ChannelPaidSearch},
		{"dclid", ChannelInput{ClickIDParam: "dclid"}, ChannelDisplay},
		{"ttclid", ChannelInput{ClickIDParam: "ttclid"}, ChannelPaidSocial},
		{"li_fat_id", ChannelInput{ClickIDParam: "li_fat_id"}, ChannelPaidSocial},
		{"twclid", ChannelInput{ClickIDParam: "twclid"}, ChannelPaidSocial},
		{"ScCid", ChannelInput{ClickIDParam: "ScCid"}, ChannelPaidSocial},
		{"epik", ChannelInput{ClickIDParam: "epik"}, ChannelPaidSocial},
		{"rdt_cid", ChannelInput{ClickIDParam: "rdt_cid"}, ChannelPaidSocial},
		{"qclid", ChannelInput{ClickIDParam: "qclid"}, ChannelPaidSocial},
		{"irclickid", ChannelInput{ClickIDParam: "irclickid"}, ChannelAffiliates},
		{"mc_cid", ChannelInput{ClickIDParam: "mc_cid"}, ChannelEmail},
		{"mc_eid", ChannelInput{ClickIDParam: "mc_eid"}, ChannelEmail},
		{"_kx", ChannelInput{ClickIDParam: "_kx"}, ChannelEmail},
		// Not ad-only: fall through.
		{"igshid", ChannelInput{ClickIDParam: "igshid", ReferrerMedium: MediumSocial}, ChannelOrganicSocial},
		{"gclsrc", ChannelInput{ClickIDParam: "gclsrc"}, ChannelDirect},
		// 3. UTM tags.
		{"utm direct", ChannelInput{UTMSource: "(direct)", UTMMedium: "(none)", ReferrerMedium: MediumSocial}, ChannelDirect},
		{"cpc google", ChannelInput{UTMSource: "google", UTMMedium: "cpc"}, ChannelPaidSearch},
		{"ppc bing", ChannelInput{UTMSource: "bing", UTMMedium: "ppc"}, ChannelPaidSearch},
		{"paidsearch", ChannelInput{UTMSource: "google", UTMMedium: "paidsearch"}, ChannelPaidSearch},
		{"cpc unknown source", ChannelInput{UTMSource: "partnerx", UTMMedium: "cpc"}, ChannelPaidSearch},
		{"cpc facebook", ChannelInput{UTMSource: "facebook", UTMMedium: "cpc"}, ChannelPaidSocial},
		{"cpc fb alias", ChannelInput{UTMSource: "fb", UTMMedium: "CPC"}, ChannelPaidSocial},
		{"paid_social medium", ChannelInput{UTMSource: "partnerx", UTMMedium: "paid_social"}, ChannelPaidSocial},
		{"retargeting instagram", ChannelInput{UTMSource: "instagram.com", UTMMedium: "retargeting"}, ChannelPaidSocial},
		{"cpm facebook", ChannelInput{UTMSource: "facebook", UTMMedium: "cpm"}, ChannelDisplay},
		{"display", ChannelInput{UTMSource: "gdn", UTMMedium: "display"}, ChannelDisplay},
		{"banner", ChannelInput{UTMSource: "site", UTMMedium: "banner"}, ChannelDisplay},
		{"cpm", ChannelInput{UTMSource: "dv360", UTMMedium: "cpm"}, ChannelDisplay},
		{"social medium", ChannelInput{UTMSource: "partnerx", UTMMedium: "social"}, ChannelOrganicSocial},
		{"social-network", ChannelInput{UTMMedium: "social-network"}, ChannelOrganicSocial},
		{"sm", ChannelInput{UTMMedium: "sm"}, ChannelOrganicSocial},
		{"social source", ChannelInput{UTMSource: "linkedin", UTMMedium: "post"}, ChannelOrganicSocial},
		{"social source only", ChannelInput{UTMSource: "twitter"}, ChannelOrganicSocial},
		{"organic", ChannelInput{UTMSource: "partnerx", UTMMedium: "organic"}, ChannelOrganicSearch},
		{"search source", ChannelInput{UTMSource: "duckduckgo"}, ChannelOrganicSearch},
		{"email", ChannelInput{UTMSource: "newsletter", UTMMedium: "email"}, ChannelEmail},
		{"e-mail", ChannelInput{UTMMedium: "E-Mail"}, ChannelEmail},
		{"newsletter medium", ChannelInput{UTMSource: "weekly", UTMMedium: "newsletter"}, ChannelEmail},
		{"email source", ChannelInput{UTMSource: "email", UTMMedium: "blast"}, ChannelEmail},
		{"affiliate", ChannelInput{UTMSource: "awin", UTMMedium: "affiliate"}, ChannelAffiliates},
		{"referral", ChannelInput{UTMSource: "partner.example", UTMMedium: "referral"}, ChannelReferral},
		{"app", ChannelInput{UTMMedium: "app"}, ChannelReferral},
		{"unassigned medium", ChannelInput{UTMSource: "poster", UTMMedium: "qr", ReferrerMedium: MediumSearch}, ChannelUnassigned},
		{"overlong medium", ChannelInput{UTMMedium: "x-very-long-medium-name-that-goes-on-and-on-past-sixty-four-bytes-long"}, ChannelUnassigned},
		{"unknown source alone falls through", ChannelInput{UTMSource: "chatgpt.com", ReferrerMedium: MediumUnknown}, ChannelReferral},
		{"campaign only", ChannelInput{ReferrerMedium: MediumSearch}, ChannelOrganicSearch},
		// 4. fbclid is not proof of an ad.
		{"fbclid alone", ChannelInput{ClickIDParam: "fbclid"}, ChannelOrganicSocial},
		{"fbclid with paid utm", ChannelInput{ClickIDParam: "fbclid", UTMSource: "facebook", UTMMedium: "paid"}, ChannelPaidSocial},
		{"fbclid with email utm", ChannelInput{ClickIDParam: "fbclid", UTMSource: "newsletter", UTMMedium: "email"}, ChannelEmail},
		// 5. Referrer medium.
		{"ref search", ChannelInput{ReferrerMedium: MediumSearch, ReferrerSource: "Google"}, ChannelOrganicSearch},
		{"ref social", ChannelInput{ReferrerMedium: MediumSocial}, ChannelOrganicSocial},
		{"ref email", ChannelInput{ReferrerMedium: MediumEmail}, ChannelEmail},
		{"ref paid", ChannelInput{ReferrerMedium: MediumPaid}, ChannelDisplay},
		{"ref unknown", ChannelInput{ReferrerMedium: MediumUnknown}, ChannelReferral},
		{"ref internal", ChannelInput{ReferrerMedium: MediumInternal}, ChannelDirect},
		{"ref direct", ChannelInput{ReferrerMedium: MediumDirect}, ChannelDirect},
		{"nothing", ChannelInput{}, ChannelDirect},
	}
	for _, tc := range cases {
		if got := Channel(tc.in); got != tc.want {
			t.Errorf("%s: %+v → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
	// Every click ID the campaign parser knows is either mapped or
	// deliberately left to the other rules.
	for _, p := range []string{"gclid", "msclkid", "fbclid", "ttclid", "gbraid", "wbraid", "dclid", "li_fat_id", "twclid", "ScCid", "epik", "rdt_cid", "qclid", "yclid", "irclickid", "mc_cid", "gad_campaignid", "gad_source", "gclsrc", "mc_eid", "_kx", "igshid"} {
		_, mapped := clickChannels[p]
		if !mapped && p != "fbclid" && p != "gclsrc" && p != "igshid" {
			t.Errorf("click ID %s not mapped", p)
		}
	}
}

func TestChannelNoAllocs(t *testing.T) {
	in := ChannelInput{UTMSource: "Some-Long-Utm-Source-Name-For-A-Partner-Network", UTMMedium: "Paid-Social-Retargeting-Campaign-Medium", ReferrerMedium: MediumSocial}
	if n := testing.AllocsPerRun(100, func() { _ = Channel(in) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
