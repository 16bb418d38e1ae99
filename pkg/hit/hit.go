// Package hit defines the raw hit record that the edge publishes to Kafka and
// the enricher consumes, with a hand-written protobuf codec that allocates
// nothing when buffers are reused. The schema is proto/pixelstream/v1/hit.proto.
package hit

import (
	"net/netip"
)

// SchemaVersion is the layout version written into every raw hit.
const SchemaVersion = 1

// ClientHints holds the User-Agent client hint headers exactly as sent.
type ClientHints struct {
	UA              []byte // Sec-CH-UA
	Mobile          []byte // Sec-CH-UA-Mobile
	Platform        []byte // Sec-CH-UA-Platform
	PlatformVersion []byte // Sec-CH-UA-Platform-Version
	Model           []byte // Sec-CH-UA-Model
	FullVersionList []byte // Sec-CH-UA-Full-Version-List
}

// Raw is one accepted pixel request. Byte-slice fields are reused across
// records by the edge (Reset keeps their capacity) and alias the input buffer
// after Unmarshal, so a decoded Raw is only valid while that buffer is.
type Raw struct {
	SchemaVersion  uint32
	EventID        EventID
	ReceivedAtNs   int64
	APIKey         []byte
	ProjectID      []byte
	ClientIP       netip.Addr
	UserAgent      []byte
	Referer        []byte
	Host           []byte
	Query          []byte
	AcceptLanguage []byte
	DNT            bool
	GPC            bool
	Prefetch       bool
	Hints          ClientHints
	EdgeInstance   []byte
	Method         []byte
	// IPMode is the project's IP handling ("full", "truncate", "drop"; empty:
	// the enricher's default) and HonourSignals whether DNT/GPC hits are
	// withheld downstream: the policy in force when the hit was accepted.
	IPMode        []byte
	HonourSignals bool
}

// Reset clears r for reuse while keeping the capacity of its buffers, which
// is what lets the edge fill records without allocating.
func (r *Raw) Reset() {
	r.SchemaVersion = 0
	r.EventID = EventID{}
	r.ReceivedAtNs = 0
	r.APIKey = r.APIKey[:0]
	r.ProjectID = r.ProjectID[:0]
	r.ClientIP = netip.Addr{}
	r.UserAgent = r.UserAgent[:0]
	r.Referer = r.Referer[:0]
	r.Host = r.Host[:0]
	r.Query = r.Query[:0]
	r.AcceptLanguage = r.AcceptLanguage[:0]
	r.DNT, r.GPC, r.Prefetch = false, false, false
	r.Hints.UA = r.Hints.UA[:0]
	r.Hints.Mobile = r.Hints.Mobile[:0]
	r.Hints.Platform = r.Hints.Platform[:0]
	r.Hints.PlatformVersion = r.Hints.PlatformVersion[:0]
	r.Hints.Model = r.Hints.Model[:0]
	r.Hints.FullVersionList = r.Hints.FullVersionList[:0]
	r.EdgeInstance = r.EdgeInstance[:0]
	r.Method = r.Method[:0]
	r.IPMode = r.IPMode[:0]
	r.HonourSignals = false
}

// IP modes a project can choose for Raw.IPMode: how the enricher writes the
// client IP after geo and the visitor id have used the full address.
const (
	IPFull     = "full"     // as received
	IPTruncate = "truncate" // IPv4 /24, IPv6 /48
	IPDrop     = "drop"     // not written at all
)

// ValidIPMode reports whether m is one of the IP modes.
func ValidIPMode(m string) bool { return m == IPFull || m == IPTruncate || m == IPDrop }
