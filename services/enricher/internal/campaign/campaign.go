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
	"strings"
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

// knownKeys maps lowercased parameter names to their kind. Lookups with
// knownKeys[string(b)] do not allocate.
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
// lookup.
const maxKnownKeyLen = len("gad_campaignid")

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
	utm                [numUTM]span
	click              [numClickIDs]span
	params             []paramSpan
	pathIsSlash        bool
	eventOK            bool
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
		sc.pageHost, sc.pagePath, pageQuery, sc.pathIsSlash = sc.splitURL(sc.page)
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
		sc.buf, f = fixValue(sc.buf, start, MaxURLLen, f)
		out.Flags |= f
		sc.page = span{int32(start), int32(len(sc.buf))}
		sc.pageHost, sc.pagePath, pageQuery, sc.pathIsSlash = sc.splitURL(sc.page)
	}
	if pageQuery.b > pageQuery.a {
		// Appending to buf never changes bytes already in it, so scanning
		// a view of it while it grows is safe even if it is reallocated.
		out.Flags |= sc.scanQuery(sc.buf[pageQuery.a:pageQuery.b], fromPage)
	}
	if sc.ref.b > sc.ref.a {
		sc.refHost, _, _, _ = sc.splitURL(sc.ref)
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
	for i, sp := range sc.utm {
		out.UTM[i] = str(sp)
	}
	for i, sp := range sc.click {
		if sp.b > sp.a {
			out.ClickIDs = append(out.ClickIDs, ClickID{Param: clickIDs[i].param, Value: str(sp), Platform: clickIDs[i].platform})
		}
	}
	if len(out.ClickIDs) > 0 {
		c := out.ClickIDs[0]
		out.ClickID, out.ClickIDParam, out.ClickPlatform = c.Value, c.Param, c.Platform
	}
	for _, p := range sc.params {
		out.Params = append(out.Params, Param{Name: str(p.name), Value: str(p.value)})
	}
}

// reset clears r for the next record, keeping the capacity of its slices.
func (r *Result) reset() {
	sc := scratch{buf: r.scratch.buf[:0], params: r.scratch.params[:0]}
	*r = Result{ClickIDs: r.ClickIDs[:0], Params: r.Params[:0], scratch: sc}
}

// scanQuery reads the parameters of one query string. From the pixel it
// records everything; from the page URL only UTM parameters and click IDs
// that the pixel did not set.
func (sc *scratch) scanQuery(q []byte, src source) Flags {
	var (
		flags             Flags
		nameBuf, lowerBuf [MaxNameLen]byte
	)
	n := 0
	for len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		if len(pair) == 0 {
			continue
		}
		if n == MaxParams {
			flags |= FlagTooManyParams
			break
		}
		n++
		rawName, rawValue := pair, []byte(nil)
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			rawName, rawValue = pair[:i], pair[i+1:]
		}
		name, f, ok := decodeName(nameBuf[:0], rawName)
		flags |= f
		if !ok || len(name) == 0 {
			continue
		}
		kind := kindOther
		if len(name) <= maxKnownKeyLen {
			lower := lowerBuf[:len(name)]
			for i, c := range name {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				lower[i] = c
			}
			kind = knownKeys[string(lower)]
		}
		flags |= sc.store(kind, name, rawValue, src)
	}
	return flags
}

// store decodes and records one parameter value according to its kind.
func (sc *scratch) store(kind keyKind, name, rawValue []byte, src source) Flags {
	var target *span
	limit, isClick := MaxValueLen, false
	switch {
	case kind == kindURL, kind == kindRef, kind == kindEvent:
		if src == fromPage {
			return 0
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
		target, isClick = &sc.click[kind-kindClick], true
	case kind >= kindUTM:
		target = &sc.utm[kind-kindUTM]
	default: // another pixel parameter
		if src == fromPage {
			return 0
		}
		p := paramSpan{}
		var f Flags
		p.name.a = int32(len(sc.buf))
		sc.buf = append(sc.buf, name...)
		p.name.b = int32(len(sc.buf))
		p.value, f = sc.appendValue(rawValue, MaxValueLen)
		sc.params = append(sc.params, p)
		return f
	}
	if target.b > target.a { // set already: first occurrence / pixel wins
		return 0
	}
	mark := len(sc.buf)
	v, f := sc.appendValue(rawValue, limit)
	if isClick && f.Has(FlagTruncated) {
		sc.buf = sc.buf[:mark] // a cut click ID would be a wrong one
		return f
	}
	*target = v
	if kind == kindEvent {
		// An over-long event type is invalid, not cut: that is reported by
		// FlagInvalidEvent alone.
		sc.eventOK = !f.Has(FlagTruncated) && sc.foldEvent(v)
		f &^= FlagTruncated
	}
	return f
}

// appendValue percent-decodes raw into buf, repairs it as documented and
// returns its span.
func (sc *scratch) appendValue(raw []byte, limit int) (span, Flags) {
	start := len(sc.buf)
	var f Flags
	sc.buf, f = appendDecoded(sc.buf, raw, limit)
	if f.Has(FlagTruncated) {
		sc.buf = trimPartialRune(sc.buf, start)
	}
	sc.buf, f = fixValue(sc.buf, start, limit, f)
	return span{int32(start), int32(len(sc.buf))}, f
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

// decodeName percent-decodes a parameter name into dst (a MaxNameLen
// buffer). Names longer than MaxNameLen are reported as not ok.
func decodeName(dst, raw []byte) ([]byte, Flags, bool) {
	dst, f := appendDecoded(dst, raw, MaxNameLen)
	if f.Has(FlagTruncated) {
		return nil, f, false
	}
	if !utf8.Valid(dst) {
		// Rare: names from buggy encoders. Repair on the heap.
		dst = bytes.ToValidUTF8(dst, []byte("\uFFFD"))
		f |= FlagBadEncoding
		if len(dst) > MaxNameLen {
			return nil, f | FlagTruncated, false
		}
	}
	return dst, f, true
}

// appendDecoded appends the WHATWG application/x-www-form-urlencoded
// decoding of src to dst, producing at most limit bytes; it reports
// FlagTruncated if src had more and FlagBadEncoding for a "%" not followed by
// two hex digits (kept literally).
func appendDecoded(dst, src []byte, limit int) ([]byte, Flags) {
	var f Flags
	n := 0
	for len(src) > 0 {
		if n == limit {
			return dst, f | FlagTruncated
		}
		// Copy the run up to the next escape in one append: most bytes of
		// most values need no decoding.
		run := 0
		for run < len(src) && src[run] != '%' && src[run] != '+' {
			run++
		}
		if run > 0 {
			if run > limit-n {
				return append(dst, src[:limit-n]...), f | FlagTruncated
			}
			dst = append(dst, src[:run]...)
			n += run
			src = src[run:]
			continue
		}
		c := src[0]
		src = src[1:]
		if c == '+' {
			c = ' '
		} else if len(src) >= 2 && isHex(src[0]) && isHex(src[1]) {
			c = unhex(src[0])<<4 | unhex(src[1])
			src = src[2:]
		} else {
			f |= FlagBadEncoding // "%" kept literally
		}
		dst = append(dst, c)
		n++
	}
	return dst, f
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
// character boundary.
func fixValue(buf []byte, start, limit int, f Flags) ([]byte, Flags) {
	if !utf8.Valid(buf[start:]) {
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
// an empty path after an authority, which Result shows as "/".
func (sc *scratch) splitURL(u span) (host, path, query span, slash bool) {
	s := sc.buf[u.a:u.b]
	base := int(u.a)
	i := schemeLen(s)
	if i > 0 {
		i++ // the ':'
	}
	hasAuthority := len(s)-i >= 2 && s[i] == '/' && s[i+1] == '/'
	if hasAuthority {
		authStart := i + 2
		authEnd := len(s)
		if j := indexAny(s[authStart:], "/?#"); j >= 0 {
			authEnd = authStart + j
		}
		hostStart := authStart
		if j := bytes.LastIndexByte(s[authStart:authEnd], '@'); j >= 0 {
			hostStart = authStart + j + 1
		}
		hostEnd := authEnd
		if hostStart < authEnd && s[hostStart] == '[' {
			if j := bytes.IndexByte(s[hostStart:authEnd], ']'); j >= 0 {
				hostStart, hostEnd = hostStart+1, hostStart+j
			}
		} else if j := bytes.IndexByte(s[hostStart:authEnd], ':'); j >= 0 {
			hostEnd = hostStart + j
		}
		host = span{int32(base + hostStart), int32(base + hostEnd)}
		if hasUpper(s[hostStart:hostEnd]) {
			host = sc.appendLower(host)
			s = sc.buf[u.a:u.b] // buf may have moved
		}
		i = authEnd
	}
	pathEnd := len(s)
	if j := indexAny(s[i:], "?#"); j >= 0 {
		pathEnd = i + j
	}
	path = span{int32(base + i), int32(base + pathEnd)}
	if hasAuthority && pathEnd == i {
		slash = true
	}
	if pathEnd < len(s) && s[pathEnd] == '?' {
		qEnd := len(s)
		if j := bytes.IndexByte(s[pathEnd+1:], '#'); j >= 0 {
			qEnd = pathEnd + 1 + j
		}
		query = span{int32(base + pathEnd + 1), int32(base + qEnd)}
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

// indexAny is bytes.IndexAny for a short ASCII set without its setup cost.
func indexAny(s []byte, chars string) int {
	for i, c := range s {
		if strings.IndexByte(chars, c) >= 0 {
			return i
		}
	}
	return -1
}

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
