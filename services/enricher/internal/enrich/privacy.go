package enrich

import (
	"net/netip"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
)

// IP modes, as defined by the raw record.
const (
	IPFull     = hit.IPFull
	IPTruncate = hit.IPTruncate
	IPDrop     = hit.IPDrop
)

// HonourSignals withholds hits carrying DNT or Sec-GPC when their project
// chose to honour those signals: they are counted, not published. It runs
// first, so nothing about such a visitor is kept even in memory.
var HonourSignals = StepFunc(func(raw *hit.Raw, _ *pageview.Pageview, _ *Scratch) error {
	if !raw.HonourSignals {
		return nil
	}
	if raw.GPC {
		return &Skip{Reason: "gpc"}
	}
	if raw.DNT {
		return &Skip{Reason: "dnt"}
	}
	return nil
})

// IPPolicy writes the client IP into the output as the project's mode
// says. It runs after every step that needs the full address (geo, visitor
// id), so no raw IP leaves the enricher unless the project chose "full".
// Hits without a mode (older edges) get def.
func IPPolicy(def string) Step {
	return StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error {
		mode := def
		if m := string(raw.IPMode); hit.ValidIPMode(m) {
			mode = m
		}
		pv.IPMode = mode
		pv.IP = ""
		if !raw.ClientIP.IsValid() || mode == IPDrop {
			return nil
		}
		ip := raw.ClientIP
		if mode == IPTruncate {
			ip = Truncate(ip)
		}
		pv.IP = s.Format(ip.AppendTo)
		return nil
	})
}

// Truncate zeroes the host part of an address: IPv4 to /24, IPv6 to /48,
// the granularity common analytics tools anonymise to (enough for
// country-level geo, too coarse to single out a household).
func Truncate(ip netip.Addr) netip.Addr {
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Addr{}
	}
	return p.Addr()
}
