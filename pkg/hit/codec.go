package hit

import (
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of RawHit and ClientHints in proto/pixelstream/v1/hit.proto.
const (
	fSchemaVersion  = 1
	fEventID        = 2
	fReceivedAtNs   = 3
	fAPIKey         = 4
	fProjectID      = 5
	fClientIP       = 6
	fUserAgent      = 7
	fReferer        = 8
	fHost           = 9
	fQuery          = 10
	fAcceptLanguage = 11
	fDNT            = 12
	fGPC            = 13
	fPrefetch       = 14
	fClientHints    = 15
	fEdgeInstance   = 16
	fMethod         = 17
	fIPMode         = 18
	fHonourSignals  = 19

	fHintUA              = 1
	fHintMobile          = 2
	fHintPlatform        = 3
	fHintPlatformVersion = 4
	fHintModel           = 5
	fHintFullVersionList = 6
)

// ErrMalformed is wrapped by every decoding error, so callers can classify a
// record that will never decode as permanent.
var ErrMalformed = errors.New("malformed raw hit")

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

func (h *ClientHints) empty() bool {
	return len(h.UA)+len(h.Mobile)+len(h.Platform)+len(h.PlatformVersion)+len(h.Model)+len(h.FullVersionList) == 0
}

func (h *ClientHints) appendProto(b []byte) []byte {
	b = appendBytesField(b, fHintUA, h.UA)
	b = appendBytesField(b, fHintMobile, h.Mobile)
	b = appendBytesField(b, fHintPlatform, h.Platform)
	b = appendBytesField(b, fHintPlatformVersion, h.PlatformVersion)
	b = appendBytesField(b, fHintModel, h.Model)
	return appendBytesField(b, fHintFullVersionList, h.FullVersionList)
}

func (h *ClientHints) size() int {
	n := 0
	for _, v := range [...][]byte{h.UA, h.Mobile, h.Platform, h.PlatformVersion, h.Model, h.FullVersionList} {
		if len(v) > 0 {
			n += 1 + protowire.SizeBytes(len(v))
		}
	}
	return n
}

// AppendProto appends the protobuf encoding of r to b and returns the
// extended slice. It allocates only when b lacks capacity.
func (r *Raw) AppendProto(b []byte) []byte {
	if r.SchemaVersion != 0 {
		b = protowire.AppendTag(b, fSchemaVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.SchemaVersion))
	}
	if !r.EventID.IsZero() {
		b = appendBytesField(b, fEventID, r.EventID[:])
	}
	if r.ReceivedAtNs != 0 {
		b = protowire.AppendTag(b, fReceivedAtNs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.ReceivedAtNs))
	}
	b = appendBytesField(b, fAPIKey, r.APIKey)
	b = appendBytesField(b, fProjectID, r.ProjectID)
	if r.ClientIP.IsValid() {
		b = protowire.AppendTag(b, fClientIP, protowire.BytesType)
		if r.ClientIP.Is4() {
			a := r.ClientIP.As4()
			b = protowire.AppendBytes(b, a[:])
		} else {
			a := r.ClientIP.As16()
			b = protowire.AppendBytes(b, a[:])
		}
	}
	b = appendBytesField(b, fUserAgent, r.UserAgent)
	b = appendBytesField(b, fReferer, r.Referer)
	b = appendBytesField(b, fHost, r.Host)
	b = appendBytesField(b, fQuery, r.Query)
	b = appendBytesField(b, fAcceptLanguage, r.AcceptLanguage)
	b = appendBoolField(b, fDNT, r.DNT)
	b = appendBoolField(b, fGPC, r.GPC)
	b = appendBoolField(b, fPrefetch, r.Prefetch)
	if !r.Hints.empty() {
		b = protowire.AppendTag(b, fClientHints, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(r.Hints.size()))
		b = r.Hints.appendProto(b)
	}
	b = appendBytesField(b, fEdgeInstance, r.EdgeInstance)
	b = appendBytesField(b, fMethod, r.Method)
	b = appendBytesField(b, fIPMode, r.IPMode)
	return appendBoolField(b, fHonourSignals, r.HonourSignals)
}

// Unmarshal decodes a RawHit from b into r. Byte-slice fields alias b.
// Unknown fields are skipped so that newer edges can add fields; any
// structural error, a wrong wire type for a known field, or an invalid IP
// length yields an error wrapping ErrMalformed.
func (r *Raw) Unmarshal(b []byte) error {
	r.Reset()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: bad tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && isVarintField(num):
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			b = b[m:]
			switch num {
			case fSchemaVersion:
				r.SchemaVersion = uint32(v)
			case fReceivedAtNs:
				r.ReceivedAtNs = int64(v)
			case fDNT:
				r.DNT = v != 0
			case fGPC:
				r.GPC = v != 0
			case fPrefetch:
				r.Prefetch = v != 0
			case fHonourSignals:
				r.HonourSignals = v != 0
			}
		case typ == protowire.BytesType && isBytesField(num):
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			b = b[m:]
			if err := r.setBytes(num, v); err != nil {
				return err
			}
		case isVarintField(num) || isBytesField(num):
			return fmt.Errorf("%w: field %d has wire type %d", ErrMalformed, num, typ)
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return fmt.Errorf("%w: unknown field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			b = b[m:]
		}
	}
	return nil
}

func isVarintField(n protowire.Number) bool {
	switch n {
	case fSchemaVersion, fReceivedAtNs, fDNT, fGPC, fPrefetch, fHonourSignals:
		return true
	}
	return false
}

func isBytesField(n protowire.Number) bool {
	switch n {
	case fEventID, fAPIKey, fProjectID, fClientIP, fUserAgent, fReferer, fHost, fQuery,
		fAcceptLanguage, fClientHints, fEdgeInstance, fMethod, fIPMode:
		return true
	}
	return false
}

func (r *Raw) setBytes(num protowire.Number, v []byte) error {
	switch num {
	case fEventID:
		if len(v) != len(r.EventID) {
			return fmt.Errorf("%w: event_id has %d bytes, want 16", ErrMalformed, len(v))
		}
		copy(r.EventID[:], v)
	case fAPIKey:
		r.APIKey = v
	case fProjectID:
		r.ProjectID = v
	case fClientIP:
		ip, ok := netip.AddrFromSlice(v)
		if !ok {
			return fmt.Errorf("%w: client_ip has %d bytes, want 4 or 16", ErrMalformed, len(v))
		}
		r.ClientIP = ip.Unmap()
	case fUserAgent:
		r.UserAgent = v
	case fReferer:
		r.Referer = v
	case fHost:
		r.Host = v
	case fQuery:
		r.Query = v
	case fAcceptLanguage:
		r.AcceptLanguage = v
	case fClientHints:
		return r.Hints.unmarshal(v)
	case fEdgeInstance:
		r.EdgeInstance = v
	case fMethod:
		r.Method = v
	case fIPMode:
		r.IPMode = v
	}
	return nil
}

func (h *ClientHints) unmarshal(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: client_hints: bad tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType || num < fHintUA || num > fHintFullVersionList {
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return fmt.Errorf("%w: client_hints field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			b = b[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return fmt.Errorf("%w: client_hints field %d: %v", ErrMalformed, num, protowire.ParseError(m))
		}
		b = b[m:]
		switch num {
		case fHintUA:
			h.UA = v
		case fHintMobile:
			h.Mobile = v
		case fHintPlatform:
			h.Platform = v
		case fHintPlatformVersion:
			h.PlatformVersion = v
		case fHintModel:
			h.Model = v
		case fHintFullVersionList:
			h.FullVersionList = v
		}
	}
	return nil
}
