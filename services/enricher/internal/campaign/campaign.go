// Package campaign extracts the page, referrer, event type, UTM parameters
// and ad-platform click IDs from a pixel request's query string (and its
// Referer header).
//
// Browsers send only the origin as Referer to a pixel on another origin
// (strict-origin-when-cross-origin), so the page URL, click IDs and UTM
// parameters arrive as explicit pixel parameters; the Referer header is the
// fallback for the page URL. Click IDs and UTM parameters are also read from
// the page URL's own query, where the ad platforms put them.
//
// # Rules
//
//   - Page URL: the "url" parameter, else the Referer header
//     (Result.PageFromReferer tells which). Referrer: the "ref" parameter only;
//     the Referer header of a pixel request is the page, not its referrer.
//   - Event type: the "e" parameter, ASCII letters folded to lower case; it
//     must then match [a-z0-9_]{1,64}. Absent or empty means "pageview";
//     anything else is replaced by "pageview" and FlagInvalidEvent is set, so
//     the enricher can count or drop such events.
//   - UTM parameters and click IDs come from the pixel's parameters and from
//     the page URL's query (not its fragment). The pixel's own parameter wins
//     when both carry the same name; within one query the first occurrence
//     wins. Empty values count as absent.
//   - Parameter names are matched case-insensitively after percent-decoding;
//     values are kept exactly as sent (fbclid is case-sensitive), apart from
//     percent-decoding.
//   - Every other pixel parameter is kept, in order, in Result.Params with its
//     name as sent. Parameters of the page URL are not copied there.
//
// # Hostile input
//
// Work is bounded: at most MaxParams parameters are read from each query
// (FlagTooManyParams), URLs are cut at MaxURLLen bytes, other values and
// parameter names at MaxValueLen and MaxNameLen (FlagTruncated). A click ID
// longer than MaxValueLen is dropped rather than cut, because a shortened
// ID would be sent to a conversion API as a wrong one. Percent-decoding
// follows the WHATWG URL standard: "+" is a space, and a "%" not followed by
// two hex digits stays literally (FlagBadEncoding) instead of failing the
// record. Invalid UTF-8 is replaced by U+FFFD (FlagBadEncoding), so every
// string in a Result is valid UTF-8 and can be written to JSON as is.
package campaign

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// Limits on the work done for one record.
const (
	// MaxParams is the number of parameters read from each query string
	// (the pixel's, then the page URL's); the rest are ignored.
	MaxParams = 256
	// MaxURLLen caps the page and referrer URLs, in bytes after decoding.
	MaxURLLen = 8 << 10
	// MaxValueLen caps every other value, in bytes after decoding.
	MaxValueLen = 512
	// MaxNameLen caps parameter names; longer names are ignored.
	MaxNameLen = 128
	// MaxEventLen is the longest accepted event type.
	MaxEventLen = 64
)

// DefaultEvent is the event type of a pixel request without a valid "e".
const DefaultEvent = "pageview"

// Indexes into Result.UTM.
const (
	UTMSource = iota
	UTMMedium
	UTMCampaign
	UTMTerm
	UTMContent
	UTMID
	numUTM
)

// UTMParams are the parameter names of Result.UTM, by index.
var UTMParams = [numUTM]string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id"}

// Flags report what was repaired or ignored while parsing a record.
type Flags uint8

// Flag values; see the package documentation for the rules behind them.
const (
	// FlagTooManyParams: a query had more than MaxParams parameters.
	FlagTooManyParams Flags = 1 << iota
	// FlagTruncated: a value was cut at its limit, or a click ID or a
	// parameter name over its limit was dropped.
	FlagTruncated
	// FlagBadEncoding: an invalid percent-escape was kept literally or
	// invalid UTF-8 was replaced.
	FlagBadEncoding
	// FlagInvalidEvent: "e" was not a valid event type; EventType is
	// DefaultEvent.
	FlagInvalidEvent
)

// Has reports whether all flags in x are set in f.
func (f Flags) Has(x Flags) bool { return f&x == x }

// ClickID is one ad-platform click identifier found on the pixel or page URL.
type ClickID struct {
	Param    string // canonical parameter name, e.g. "gclid", "ScCid"
	Value    string // as sent (after percent-decoding)
	Platform string // e.g. "google_ads", "meta"; see clickIDs
}

// Param is a pixel parameter that has no field of its own in Result.
type Param struct {
	Name  string // as sent (after percent-decoding)
	Value string // after percent-decoding
}

// Result is what Parse extracts from one pixel request. Reuse one Result per
// worker: Parse keeps the capacity of its slices and working memory. All
// strings are immutable and may be retained; the ClickIDs and Params slices
// are overwritten by the next Parse into the same Result, so copy them to
// keep them. A copied Result shares working memory with its original: do
// not Parse into both concurrently.
type Result struct {
	// PageURL is the page the pixel fired on, as sent (the url parameter is
	// percent-decoded once, the Referer header taken verbatim).
	PageURL string
	// PageHost is the page URL's host, ASCII-lowercased, without port,
	// userinfo or IPv6 brackets; empty when the URL has no authority.
	PageHost string
	// PagePath is the page URL's path as sent (still percent-encoded),
	// without query or fragment; "/" for an empty path after a host.
	PagePath string
	// PageFromReferer is set when PageURL came from the Referer header,
	// which is usually only the origin ("https://example.com/").
	PageFromReferer bool

	ReferrerURL  string // the ref parameter, percent-decoded
	ReferrerHost string // as PageHost

	EventType string // valid event type from "e", or DefaultEvent

	// UTM holds utm_source, utm_medium, utm_campaign, utm_term, utm_content
	// and utm_id, indexed by UTMSource…UTMID.
	UTM [numUTM]string

	// ClickIDs lists every click ID found, in priority order (see
	// clickIDs), at most one per parameter name.
	ClickIDs []ClickID
	// ClickID, ClickIDParam and ClickPlatform repeat ClickIDs[0], the
	// primary click ID, or are empty.
	ClickID, ClickIDParam, ClickPlatform string

	// Params holds the remaining pixel parameters in the order sent.
	Params []Param

	Flags Flags // what was repaired or ignored

	scratch scratch
}

// Param returns the value of the first pixel parameter in Params whose name
// equals name, compared case-insensitively.
func (r *Result) Param(name string) (string, bool) {
	for _, p := range r.Params {
		if equalFoldASCII(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// clickIDs is the priority order of click IDs, highest first. Ad-click IDs
// come first: they identify one click and are what conversion APIs take.
// Google's own IDs precede the others only because a URL rarely carries IDs
// of two platforms (then it is usually a shared link). Affiliate and email
// campaign IDs follow, then attributes that describe a click without
// identifying it (gad_*, gclsrc), email member IDs, and finally igshid, which
// marks a shared Instagram link, not an ad click.
var clickIDs = [...]struct{ param, platform string }{
	{"gclid", "google_ads"},
	{"msclkid", "microsoft_ads"},
	{"fbclid", "meta"},
	{"ttclid", "tiktok"},
	{"gbraid", "google_ads"},
	{"wbraid", "google_ads"},
	{"dclid", "google_marketing_platform"},
	{"li_fat_id", "linkedin"},
	{"twclid", "x"},
	{"ScCid", "snapchat"},
	{"epik", "pinterest"},
	{"rdt_cid", "reddit"},
	{"qclid", "quora"},
	{"yclid", "yandex"},
	{"irclickid", "impact"},
	{"mc_cid", "mailchimp"},
	{"gad_campaignid", "google_ads"},
	{"gad_source", "google_ads"},
	{"gclsrc", "google_ads"},
	{"mc_eid", "mailchimp"},
	{"_kx", "klaviyo"},
	{"igshid", "instagram"},
}

const numClickIDs = len(clickIDs)

// keyKind classifies a lowercased parameter name.
type keyKind uint8

const (
	kindOther keyKind = iota
	kindURL
	kindRef
	kindEvent
	kindUTM                      // + UTM index
	kindClick = kindUTM + numUTM // + click-ID index
)

// knownKeys maps lowercased parameter names to their kind. It is the
// definition; Parse looks names up in keyTable, built from it.
var knownKeys = func() map[string]keyKind {
	m := map[string]keyKind{"url": kindURL, "ref": kindRef, "e": kindEvent}
	for i, name := range UTMParams {
		m[name] = kindUTM + keyKind(i)
	}
	for i, c := range clickIDs {
		m[string(bytes.ToLower([]byte(c.param)))] = kindClick + keyKind(i)
	}
	return m
}()

// maxKnownKeyLen is the longest name in knownKeys; longer names skip the
// lookup. keyWords needs it below 16.
const maxKnownKeyLen = len("gad_campaignid")

// keyTable is a collision-free hash table of knownKeys, indexed by keySlot.
// A map lookup hashes the whole name and compares strings; here a name
// lowercased into two zero-padded words is hashed with one multiplication
// and compared with two word comparisons. Empty slots have kind kindOther.
var keyTable [1 << keyTableBits]struct {
	w0, w1 uint64
	kind   keyKind
}

const keyTableBits = 6 // 64 slots for 31 names

// keyMul is the multiplier of keySlot, chosen by init to be collision-free.
var keyMul uint64

// keyWords packs a name of at most maxKnownKeyLen bytes, ASCII-lowercased,
// into two words: bytes 0–14 hold the name, zero-padded, byte 15 its length
// (so that "e" and "e\x00", both possible after percent-decoding, differ).
func keyWords(name []byte) (w0, w1 uint64) {
	n := len(name)
	if cap(name) >= 16 {
		// The usual case, a name in scanQuery's buffer: load it as two
		// words and clear what follows it, rather than assemble the
		// words byte by byte.
		b := name[:16]
		w0, w1 = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
		if n < 8 {
			w0, w1 = w0&(1<<(8*n)-1), 0
		} else {
			w1 &= 1<<(8*(n-8)) - 1
		}
	} else {
		for i, c := range name {
			if i < 8 {
				w0 |= uint64(c) << (8 * i)
			} else {
				w1 |= uint64(c) << (8 * (i - 8))
			}
		}
	}
	return lowerASCII(w0), lowerASCII(w1) | uint64(n)<<56
}

// lowerASCII lowercases the ASCII letters among the 8 bytes of w.
func lowerASCII(w uint64) uint64 {
	const hi = 0x8080808080808080
	x := w &^ hi                 // bytes of at most 0x7F: sums below do not carry
	ge := x + 0x3F3F3F3F3F3F3F3F // high bit set where x >= 'A' (0x80-0x41)
	gt := x + 0x2525252525252525 // high bit set where x > 'Z' (0x80-0x5B)
	upper := ge &^ gt &^ w & hi  // and w itself is ASCII
	return w | upper>>2          // 0x80>>2 is 'a'-'A'
}

func keySlot(w0, w1 uint64) uint64 {
	return (w0 ^ bits.RotateLeft64(w1, 31)) * keyMul >> (64 - keyTableBits)
}

// lookupKey returns the kind of a parameter name of at most maxKnownKeyLen
// bytes, compared case-insensitively.
func lookupKey(name []byte) keyKind {
	w0, w1 := keyWords(name)
	e := &keyTable[keySlot(w0, w1)]
	if e.w0 == w0 && e.w1 == w1 {
		return e.kind
	}
	return kindOther
}

func init() {
	// Try odd multipliers from a fixed sequence until every known name
	// has a slot of its own. About one in 2,000 works (31 names in 64
	// slots), so this costs ~0.5 ms at start-up, and adding a name to
	// knownKeys needs no new constant.
	x := uint64(0x9E3779B97F4A7C15)
	for range 1 << 20 {
		x += 0x9E3779B97F4A7C15
		keyMul = splitmix(x) | 1
		var used uint64
		ok := true
		for name := range knownKeys {
			if len(name) > maxKnownKeyLen {
				panic("campaign: known key " + name + " longer than maxKnownKeyLen")
			}
			w0, w1 := keyWords([]byte(name))
			bit := uint64(1) << keySlot(w0, w1)
			if used&bit != 0 {
				ok = false
				break
			}
			used |= bit
		}
		if !ok {
			continue
		}
		for name, kind := range knownKeys {
			w0, w1 := keyWords([]byte(name))
			e := &keyTable[keySlot(w0, w1)]
			e.w0, e.w1, e.kind = w0, w1, kind
		}
		return
	}
	panic("campaign: no collision-free keyMul")
}

func splitmix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// span is a byte range of scratch.buf. The zero span is the empty string,
// which also means "absent".
type span struct{ a, b int32 }

// scratch is per-Result working memory reused across Parse calls. Every
// string of a Result is first assembled in buf (decoded values, lowercased
// hosts) and recorded as a span; one conversion of buf at the end then
// yields all strings with a single allocation.
type scratch struct {
	buf                []byte
	page, ref          span
	pageHost, pagePath span
	refHost            span
	event              span
	// utm[i] and click[i] are valid only where bit i of utmSet or
	// clickSet is set (to a non-empty value), so that reset clears two
	// words instead of 28 spans.
	utm         [numUTM]span
	click       [numClickIDs]span
	utmSet      uint8
	clickSet    uint32
	params      []paramSpan
	pathIsSlash bool
	eventOK     bool
}

type paramSpan struct{ name, value span }

// source says which query a parameter comes from.
type source uint8

const (
	fromPixel source = iota
	fromPage
)

// Parse extracts the fields of out from a pixel request's raw query string
// (without "?") and its Referer header. Neither input is retained. It never
// fails: problems are repaired as documented and reported in out.Flags.
func Parse(query, referer []byte, out *Result) {
	out.reset()
	sc := &out.scratch

	out.Flags |= sc.scanQuery(query, fromPixel)

	// Page URL: the url parameter, else the Referer header.
	pageQuery := span{}
	if sc.page.b > sc.page.a {
		sc.pageHost, sc.pagePath, pageQuery, sc.pathIsSlash = sc.splitURL(sc.page, false)
	} else if len(referer) > 0 {
		out.PageFromReferer = true
		start := len(sc.buf)
		var f Flags
		if len(referer) > MaxURLLen {
			referer = referer[:MaxURLLen]
			f |= FlagTruncated
		}
		sc.buf = append(sc.buf, referer...)
		if f.Has(FlagTruncated) {
			sc.buf = trimPartialRune(sc.buf, start)
		}
		sc.buf, f = fixValue(sc.buf, start, MaxURLLen, f, false)
		out.Flags |= f
		sc.page = span{int32(start), int32(len(sc.buf))}
		sc.pageHost, sc.pagePath, pageQuery, sc.pathIsSlash = sc.splitURL(sc.page, false)
	}
	if pageQuery.b > pageQuery.a {
		// Appending to buf never changes bytes already in it, so scanning
		// a view of it while it grows is safe even if it is reallocated.
		out.Flags |= sc.scanQuery(sc.buf[pageQuery.a:pageQuery.b], fromPage)
	}
	if sc.ref.b > sc.ref.a {
		sc.refHost, _, _, _ = sc.splitURL(sc.ref, true)
	}

	// One allocation for every string of the record.
	s := string(sc.buf)
	str := func(sp span) string { return s[sp.a:sp.b] }

	out.PageURL = str(sc.page)
	out.PageHost = str(sc.pageHost)
	out.PagePath = str(sc.pagePath)
	if sc.pathIsSlash {
		out.PagePath = "/"
	}
	out.ReferrerURL = str(sc.ref)
	out.ReferrerHost = str(sc.refHost)

	out.EventType = DefaultEvent
	if sc.event.b > sc.event.a {
		if sc.eventOK {
			out.EventType = str(sc.event)
		} else {
			out.Flags |= FlagInvalidEvent
		}
	}
	for i := range sc.utm {
		out.UTM[i] = ""
		if sc.utmSet&(1<<i) != 0 {
			out.UTM[i] = str(sc.utm[i])
		}
	}
	for m := sc.clickSet; m != 0; m &= m - 1 { // in priority order
		i := bits.TrailingZeros32(m)
		out.ClickIDs = append(out.ClickIDs, ClickID{Param: clickIDs[i].param, Value: str(sc.click[i]), Platform: clickIDs[i].platform})
	}
	out.ClickID, out.ClickIDParam, out.ClickPlatform = "", "", ""
	if len(out.ClickIDs) > 0 {
		c := out.ClickIDs[0]
		out.ClickID, out.ClickIDParam, out.ClickPlatform = c.Value, c.Param, c.Platform
	}
	for _, p := range sc.params {
		out.Params = append(out.Params, Param{Name: str(p.name), Value: str(p.value)})
	}
}

// reset clears r for the next record, keeping the capacity of its slices.
// It clears only what Parse reads or appends to; Parse assigns every other
// field at its end (TestParseOverwritesEveryField). Rebuilding the whole
// Result, ~600 bytes with pointers, was 5–8 % of Parse.
func (r *Result) reset() {
	r.ClickIDs, r.Params = r.ClickIDs[:0], r.Params[:0]
	r.PageFromReferer, r.Flags = false, 0
	sc := &r.scratch
	sc.buf, sc.params = sc.buf[:0], sc.params[:0]
	sc.page, sc.ref, sc.pageHost, sc.pagePath, sc.refHost, sc.event = span{}, span{}, span{}, span{}, span{}, span{}
	sc.utmSet, sc.clickSet = 0, 0
	sc.pathIsSlash, sc.eventOK = false, false
}

// scanQuery reads the parameters of one query string. From the pixel it
// records everything; from the page URL only UTM parameters and click IDs
// that the pixel did not set.
//
// Names and values are decoded straight from q, each up to the '=' or '&'
// that ends it, rather than after splitting q into pairs: one pass over the
// bytes instead of three. A '%' escape never spans a separator, as neither
// is a hex digit, so this splits exactly where the separators are.
func (sc *scratch) scanQuery(q []byte, src source) Flags {
	var (
		flags   Flags
		nameBuf [MaxNameLen]byte
	)
	n := 0
	for len(q) > 0 {
		if q[0] == '&' { // empty pair
			q = q[1:]
			continue
		}
		if n == MaxParams {
			flags |= FlagTooManyParams
			break
		}
		n++
		name, f, used, ok := decodeName(nameBuf[:0], q)
		flags |= f
		q = q[used:]
		if ok && len(name) > 0 {
			if len(q) > 0 && q[0] == '=' {
				q = q[1:]
			} // else no value: q is empty or starts with the next '&'
			kind := kindOther
			if len(name) <= maxKnownKeyLen {
				kind = lookupKey(name)
			}
			f, used := sc.store(kind, name, q, src)
			flags |= f
			q = q[used:]
		}
		// Skip what was not decoded of the pair, and its '&'.
		if len(q) > 0 && q[0] == '&' {
			q = q[1:]
		} else if i := bytes.IndexByte(q, '&'); i >= 0 {
			q = q[i+1:]
		} else {
			q = nil
		}
	}
	return flags
}

// store decodes and records one parameter value according to its kind.
// The raw value is the start of q, up to the first '&'; used tells how much
// of q was read (0 when the value was not needed).
func (sc *scratch) store(kind keyKind, name, q []byte, src source) (_ Flags, used int) {
	var target *span
	limit := MaxValueLen
	switch {
	case kind == kindURL, kind == kindRef, kind == kindEvent:
		if src == fromPage {
			return 0, 0
		}
		target = &sc.page
		if kind == kindRef {
			target = &sc.ref
		}
		limit = MaxURLLen
		if kind == kindEvent {
			target, limit = &sc.event, MaxEventLen
		}
	case kind >= kindClick:
		i := kind - kindClick
		if sc.clickSet&(1<<i) != 0 { // first occurrence / pixel wins
			return 0, 0
		}
		mark := len(sc.buf)
		v, f, used := sc.appendValue(q, MaxValueLen)
		if f.Has(FlagTruncated) {
			sc.buf = sc.buf[:mark] // a cut click ID would be a wrong one
			return f, used
		}
		if v.b > v.a {
			sc.click[i] = v
			sc.clickSet |= 1 << i
		}
		return f, used
	case kind >= kindUTM:
		i := kind - kindUTM
		if sc.utmSet&(1<<i) != 0 {
			return 0, 0
		}
		v, f, used := sc.appendValue(q, MaxValueLen)
		if v.b > v.a {
			sc.utm[i] = v
			sc.utmSet |= 1 << i
		}
		return f, used
	default: // another pixel parameter
		if src == fromPage {
			return 0, 0
		}
		p := paramSpan{}
		var f Flags
		p.name.a = int32(len(sc.buf))
		sc.buf = append(sc.buf, name...)
		p.name.b = int32(len(sc.buf))
		p.value, f, used = sc.appendValue(q, MaxValueLen)
		sc.params = append(sc.params, p)
		return f, used
	}
	if target.b > target.a { // set already: first occurrence wins
		return 0, 0
	}
	v, f, used := sc.appendValue(q, limit)
	*target = v
	if kind == kindEvent {
		// An over-long event type is invalid, not cut: that is reported by
		// FlagInvalidEvent alone.
		sc.eventOK = !f.Has(FlagTruncated) && sc.foldEvent(v)
		f &^= FlagTruncated
	}
	return f, used
}

// appendValue percent-decodes the value at the start of q (up to '&') into
// buf, repairs it as documented and returns its span and the bytes of q
// read.
func (sc *scratch) appendValue(q []byte, limit int) (span, Flags, int) {
	start := len(sc.buf)
	var (
		f     Flags
		ascii bool
		used  int
	)
	sc.buf, f, ascii, used = appendDecoded(sc.buf, q, limit, stopAmp)
	if f.Has(FlagTruncated) {
		sc.buf = trimPartialRune(sc.buf, start)
	}
	sc.buf, f = fixValue(sc.buf, start, limit, f, ascii)
	return span{int32(start), int32(len(sc.buf))}, f, used
}

// foldEvent lowercases the event type in place and reports whether it is
// valid. The check runs on the decoded value, so "%41" cannot sneak in
// characters outside the charset.
func (sc *scratch) foldEvent(v span) bool {
	b := sc.buf[v.a:v.b]
	if len(b) > MaxEventLen {
		return false
	}
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		default:
			return false
		}
	}
	return true
}

// decodeName percent-decodes the parameter name at the start of q (up to
// '=' or '&') into dst (a MaxNameLen buffer) and tells how many bytes of q
// it read. Names longer than MaxNameLen are reported as not ok.
func decodeName(dst, q []byte) (_ []byte, _ Flags, used int, ok bool) {
	dst, f, ascii, used := appendDecoded(dst, q, MaxNameLen, stopAmp|stopEq)
	if f.Has(FlagTruncated) {
		return nil, f, used, false
	}
	if !ascii && !utf8.Valid(dst) {
		// Rare: names from buggy encoders. Repair on the heap.
		dst = bytes.ToValidUTF8(dst, []byte("\uFFFD"))
		f |= FlagBadEncoding
		if len(dst) > MaxNameLen {
			return nil, f | FlagTruncated, used, false
		}
	}
	return dst, f, used, true
}

// appendDecoded appends the WHATWG application/x-www-form-urlencoded
// decoding of src, up to the first byte of class stop (stopAmp, stopEq)
// or its end, to dst, producing at most limit bytes; it reports
// FlagTruncated if there was more and FlagBadEncoding for a "%" not followed
// by two hex digits (kept literally). used is the number of bytes of src
// read: the index of the stop byte, len(src), or where the limit was hit.
// ascii reports that every byte appended is ASCII, which spares the caller
// a UTF-8 check.
func appendDecoded(dst, src []byte, limit int, stop uint8) (_ []byte, _ Flags, ascii bool, used int) {
	var (
		f  Flags
		or byte // of all bytes appended, to tell ASCII
	)
	// The result is never longer than src: grow dst once and write bytes
	// into it instead of appending run by run, which cost a memmove call
	// per run between escapes (URLs in a query have one every few bytes).
	start := len(dst)
	dst = slices.Grow(dst, min(len(src), limit))
	out := dst[start : start+min(len(src), limit)]
	i, j := 0, 0
	for ; i < len(src); i++ {
		c := src[i]
		if cl := formClass[c]; cl != 0 {
			if cl&stop != 0 {
				break
			}
			if j == len(out) { // at the limit (j <= i < len(src))
				return dst[:start+j], f | FlagTruncated, or < utf8.RuneSelf, i
			}
			if cl == classPlus {
				c = ' '
			} else if cl == classPercent {
				if hi, lo := hexVal(src, i+1), hexVal(src, i+2); hi|lo < 16 {
					c = hi<<4 | lo
					i += 2
				} else {
					f |= FlagBadEncoding // "%" kept literally
				}
			}
		} else if j == len(out) {
			return dst[:start+j], f | FlagTruncated, or < utf8.RuneSelf, i
		}
		or |= c
		out[j] = c
		j++
	}
	return dst[:start+j], f, or < utf8.RuneSelf, i
}

// Classes of bytes in formClass. stopAmp and stopEq end a name or value;
// everything of class 0 is copied as it is.
const (
	stopAmp = 1 << iota
	stopEq
	classPlus
	classPercent
)

var formClass = [256]uint8{'&': stopAmp, '=': stopEq, '+': classPlus, '%': classPercent}

// unhexTab maps hex digits to their value and every other byte to 0xFF, so
// that two lookups ORed together are below 16 only if both are digits.
var unhexTab = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xFF
		if isHex(byte(c)) {
			t[c] = unhex(byte(c))
		}
	}
	return t
}()

// hexVal returns the value of the hex digit s[i], or 0xFF if there is none.
func hexVal(s []byte, i int) byte {
	if i < len(s) {
		return unhexTab[s[i]]
	}
	return 0xFF
}

// trimPartialRune drops a character cut in the middle by a length limit
// from the end of buf[start:], so that the cut is not mistaken for (and
// reported as) invalid UTF-8.
func trimPartialRune(buf []byte, start int) []byte {
	for i := len(buf) - 1; i >= start && i >= len(buf)-utf8.UTFMax; i-- {
		if utf8.RuneStart(buf[i]) {
			if !utf8.FullRune(buf[i:]) {
				return buf[:i]
			}
			break
		}
	}
	return buf
}

// fixValue makes buf[start:] valid UTF-8 of at most limit bytes, cutting at a
// character boundary. ascii says that buf[start:] is known to be ASCII.
func fixValue(buf []byte, start, limit int, f Flags, ascii bool) ([]byte, Flags) {
	if !ascii && !utf8.Valid(buf[start:]) {
		fixed := bytes.ToValidUTF8(buf[start:], []byte("\uFFFD"))
		buf = append(buf[:start], fixed...)
		f |= FlagBadEncoding
	}
	if len(buf)-start > limit {
		end := start + limit
		for end > start && !utf8.RuneStart(buf[end]) {
			end--
		}
		buf = buf[:end]
		f |= FlagTruncated
	}
	return buf, f
}

// splitURL locates host, path and query of the URL at u in buf. The host is
// lowercased into a new span when it has upper-case letters; slash reports
// an empty path after an authority, which Result shows as "/". With
// hostOnly it stops after the host: the referrer needs no more, and is
// often a full page URL with a long query.
func (sc *scratch) splitURL(u span, hostOnly bool) (host, path, query span, slash bool) {
	s := sc.buf[u.a:u.b]
	base := int(u.a)
	i := schemeLen(s)
	if i > 0 {
		i++ // the ':'
	}
	hasAuthority := len(s)-i >= 2 && s[i] == '/' && s[i+1] == '/'
	if hasAuthority {
		// One pass over the authority finds its end, the last '@', the
		// first ':' after it and whether the host before that ':' has
		// upper case; most bytes are of no class and cost one load.
		authStart := i + 2
		authEnd := len(s)
		at, colon, upper := -1, -1, false
		for j := authStart; j < len(s); j++ {
			cl := urlClass[s[j]]
			if cl == 0 {
				continue
			}
			if cl&(delimSlash|delimQuery|delimFragment) != 0 {
				authEnd = j
				break
			}
			switch cl {
			case classAt:
				at, colon, upper = j, -1, false
			case classColon:
				if colon < 0 {
					colon = j
				}
			case classUpper:
				if colon < 0 {
					upper = true
				}
			}
		}
		hostStart := authStart
		if at >= 0 {
			hostStart = at + 1
		}
		hostEnd := authEnd
		if hostStart < authEnd && s[hostStart] == '[' {
			if j := bytes.IndexByte(s[hostStart:authEnd], ']'); j >= 0 {
				hostStart, hostEnd = hostStart+1, hostStart+j
			}
			upper = hasUpper(s[hostStart:hostEnd])
		} else if colon >= 0 {
			hostEnd = colon
		}
		host = span{int32(base + hostStart), int32(base + hostEnd)}
		if upper {
			host = sc.appendLower(host)
			s = sc.buf[u.a:u.b] // buf may have moved
		}
		i = authEnd
	}
	if hostOnly {
		return host, path, query, slash
	}
	// The path ends at the first '?' or '#', the query at the first '#'
	// after it. Finding the '#' first, then a '?' before it, gives both
	// with two vectorised searches instead of a loop over the path.
	fragment := len(s)
	if j := bytes.IndexByte(s[i:], '#'); j >= 0 {
		fragment = i + j
	}
	pathEnd := fragment
	if j := bytes.IndexByte(s[i:fragment], '?'); j >= 0 {
		pathEnd = i + j
		query = span{int32(base + pathEnd + 1), int32(base + fragment)}
	}
	path = span{int32(base + i), int32(base + pathEnd)}
	if hasAuthority && pathEnd == i {
		slash = true
	}
	return host, path, query, slash
}

// appendLower appends an ASCII-lowercased copy of sp to buf.
func (sc *scratch) appendLower(sp span) span {
	start := len(sc.buf)
	for i := sp.a; i < sp.b; i++ {
		c := sc.buf[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		sc.buf = append(sc.buf, c)
	}
	return span{int32(start), int32(len(sc.buf))}
}

// schemeLen returns the length of a URL scheme at the start of s (RFC 3986:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'), or 0.
func schemeLen(s []byte) int {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return 0
		}
	}
	return 0
}

// Classes of bytes in urlClass: delimiters of URL parts, and what
// splitURL looks for in the authority.
const (
	delimSlash    = 1 << iota // '/'
	delimQuery                // '?'
	delimFragment             // '#'
	classAt                   // '@'
	classColon                // ':'
	classUpper                // 'A'–'Z'
)

var urlClass = func() (t [256]uint8) {
	t['/'], t['?'], t['#'], t['@'], t[':'] = delimSlash, delimQuery, delimFragment, classAt, classColon
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = classUpper
	}
	return t
}()

func hasUpper(s []byte) bool {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
