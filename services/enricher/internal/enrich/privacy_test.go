package enrich

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

func TestIPPolicy(t *testing.T) {
	tests := []struct {
		def, mode, ip, want, wantMode string
	}{
		{IPTruncate, "", "81.2.69.142", "81.2.69.0", IPTruncate},
		{IPTruncate, "full", "81.2.69.142", "81.2.69.142", IPFull},
		{IPFull, "truncate", "2001:db8:1234:5678::1", "2001:db8:1234::", IPTruncate},
		{IPTruncate, "drop", "81.2.69.142", "", IPDrop},
		{IPDrop, "", "81.2.69.142", "", IPDrop},
		{IPTruncate, "bogus", "81.2.69.142", "81.2.69.0", IPTruncate},
	}
	for _, tc := range tests {
		s, _ := newStage()
		s.NewSteps = func() []Step { return []Step{Basics, IPPolicy(tc.def)} }
		r := rawHit("ua")
		r.ClientIP = netip.MustParseAddr(tc.ip)
		r.IPMode = []byte(tc.mode)
		b := &pipeline.Batch{In: []kafka.Message{{Value: r.AppendProto(nil)}}}
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		var pv pageview.Pageview
		if err := json.Unmarshal(b.Out[0].Value, &pv); err != nil {
			t.Fatal(err)
		}
		if pv.IP != tc.want || pv.IPMode != tc.wantMode {
			t.Errorf("default %s, mode %q, ip %s: got ip %q mode %q, want %q %q", tc.def, tc.mode, tc.ip, pv.IP, pv.IPMode, tc.want, tc.wantMode)
		}
	}
}

func TestHonourSignals(t *testing.T) {
	tests := []struct {
		honour, dnt, gpc bool
		wantSkip         string
	}{
		{false, true, true, ""},
		{true, false, false, ""},
		{true, true, false, "dnt"},
		{true, false, true, "gpc"},
	}
	for _, tc := range tests {
		r := rawHit("ua")
		r.HonourSignals, r.DNT, r.GPC = tc.honour, tc.dnt, tc.gpc
		err := HonourSignals.Enrich(r, &pageview.Pageview{}, &Scratch{})
		got := ""
		if sk, ok := err.(*Skip); ok {
			got = sk.Reason
		}
		if got != tc.wantSkip {
			t.Errorf("%+v: skip %q, want %q", tc, got, tc.wantSkip)
		}
	}
}
