package pixel

import (
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
	"github.com/pixelstream/pixelstream/services/edge/internal/projects"
	"github.com/pixelstream/pixelstream/services/edge/internal/ratelimit"
)

// Path is the pixel endpoint.
const Path = "/api/v1/pixel"

// Keys finds an API key's entry: its project and rate-limit bucket (nil
// when unknown). projects.Registry and projects.Set implement it.
type Keys interface {
	LookupKey(key []byte) *projects.Key
}

// Queue takes accepted hits off the request path. NewRecord hands out an
// empty record to fill; Publish takes it back and must not block: when it
// cannot take the hit it drops (and counts) it and returns false. The
// handler points the record's fields into the request's buffers, which
// fasthttp reuses once Handle returns, so Publish must have copied or
// encoded what it keeps before it returns. publish.Publisher implements it.
type Queue interface {
	NewRecord() *hit.Raw
	Publish(r *hit.Raw) bool
}

// Config holds what a Handler needs.
type Config struct {
	Keys     Keys
	ClientIP *clientip.Resolver
	Queue    Queue
	// Instance names this edge in every record (default: host name).
	Instance string
	// RateLimit is the hits per second each API key may record (0: no
	// limit); RateBurst how many at once (0: one second's worth). Beyond
	// it a hit is answered 429 and not recorded.
	RateLimit float64
	RateBurst int
	// Registerer receives the handler's metrics.
	Registerer prometheus.Registerer
}

// Results of a request, the values of the result label of
// pixelstream_edge_hits_total.
const (
	ResultAccepted       = "accepted"
	ResultHead           = "head"
	ResultMissingKey     = "missing_key"
	ResultUnknownKey     = "unknown_key"
	ResultHostNotAllowed = "host_not_allowed"
	ResultNotFound       = "not_found"
	ResultBadMethod      = "method_not_allowed"
	ResultRateLimited    = "rate_limited"
)

// Handler answers pixel requests. It is safe for concurrent use.
type Handler struct {
	keys     Keys
	ips      *clientip.Resolver
	queue    Queue
	instance []byte
	limiter  *ratelimit.Limiter

	accepted, head, missingKey, unknownKey, hostNotAllowed, notFound, badMethod, rateLimited prometheus.Counter
}

// New returns a Handler and registers its metrics.
func New(cfg Config) (*Handler, error) {
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_edge_hits_total",
		Help: "Pixel requests by result: accepted (recorded), head (answered, not recorded), missing_key, unknown_key, host_not_allowed, rate_limited, not_found, method_not_allowed.",
	}, []string{"result"})
	if err := cfg.Registerer.Register(hits); err != nil {
		return nil, err
	}
	ips := cfg.ClientIP
	if ips == nil {
		ips = clientip.New(nil)
	}
	return &Handler{
		keys:           cfg.Keys,
		ips:            ips,
		queue:          cfg.Queue,
		instance:       []byte(cfg.Instance),
		limiter:        ratelimit.New(cfg.RateLimit, cfg.RateBurst),
		accepted:       hits.WithLabelValues(ResultAccepted),
		head:           hits.WithLabelValues(ResultHead),
		missingKey:     hits.WithLabelValues(ResultMissingKey),
		unknownKey:     hits.WithLabelValues(ResultUnknownKey),
		hostNotAllowed: hits.WithLabelValues(ResultHostNotAllowed),
		notFound:       hits.WithLabelValues(ResultNotFound),
		badMethod:      hits.WithLabelValues(ResultBadMethod),
		rateLimited:    hits.WithLabelValues(ResultRateLimited),
	}, nil
}

// Request header names read per hit, in fasthttp's canonical form so that
// PeekCanonical can skip normalising the name on every lookup (that
// normalisation was 15% of the handler's CPU time).
var (
	hdrAcceptLanguage = []byte("Accept-Language")
	hdrDNT            = []byte("Dnt")
	hdrSecGPC         = []byte("Sec-Gpc")
	hdrSecPurpose     = []byte("Sec-Purpose")
	hdrPurpose        = []byte("Purpose")
	hdrXMoz           = []byte("X-Moz")
	hdrXPurpose       = []byte("X-Purpose")
	hdrCHUA           = []byte("Sec-Ch-Ua")
	hdrCHMobile       = []byte("Sec-Ch-Ua-Mobile")
	hdrCHPlatform     = []byte("Sec-Ch-Ua-Platform")
	hdrCHPlatformVer  = []byte("Sec-Ch-Ua-Platform-Version")
	hdrCHModel        = []byte("Sec-Ch-Ua-Model")
	hdrCHFullVersions = []byte("Sec-Ch-Ua-Full-Version-List")
)

const hdrXFF = "X-Forwarded-For"

// keyBufs holds buffers for decoding escaped keys.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxKeyLen); return &b }}

const (
	// maxKeyLen is the longest API key (projects.validKey).
	maxKeyLen = 256
	// maxPageURLPrefix is how much of the url parameter is decoded to find
	// the page host: scheme, user info and host fit in it.
	maxPageURLPrefix = 2048
)

// Handle serves one request: every answer is the GIF; GET and POST with a
// known key from an allowed page host are recorded, HEAD is answered and
// not recorded. A POST body is ignored (amp-analytics falls back to POST;
// the server caps the body size).
func (h *Handler) Handle(ctx *fasthttp.RequestCtx) {
	query, host, ok := target(&ctx.Request.Header)
	if !ok {
		if string(ctx.Path()) != Path {
			h.notFound.Inc()
			WriteGIF(ctx, fasthttp.StatusNotFound, reasonNotFound)
			return
		}
		query, host = ctx.URI().QueryString(), ctx.Host()
	}
	head := false
	switch string(ctx.Method()) {
	case fasthttp.MethodGet, fasthttp.MethodPost:
	case fasthttp.MethodHead:
		head = true
	default:
		h.badMethod.Inc()
		WriteGIF(ctx, fasthttp.StatusMethodNotAllowed, reasonMethod)
		ctx.Response.Header.SetCanonical(hAllow, vAllow)
		return
	}

	// The query is scanned for key and url only: nothing here parses every
	// parameter (ctx.QueryArgs would), however many a request carries.
	key, _ := queryParam(query, "key")
	if escaped(key) {
		// Rare: keys are plain ASCII. The decoded key is passed through the
		// Keys interface, so it cannot live on this stack.
		buf := keyBufs.Get().(*[]byte)
		defer keyBufs.Put(buf)
		var cut bool
		if key, cut = decodeInto((*buf)[:0], key); cut {
			h.unknownKey.Inc()
			WriteGIF(ctx, fasthttp.StatusForbidden, reasonUnknownKey)
			return
		}
	}
	if len(key) == 0 {
		h.missingKey.Inc()
		WriteGIF(ctx, fasthttp.StatusBadRequest, reasonMissingKey)
		return
	}
	entry := h.keys.LookupKey(key)
	if entry == nil {
		h.unknownKey.Inc()
		WriteGIF(ctx, fasthttp.StatusForbidden, reasonUnknownKey)
		return
	}
	project := entry.Project
	req := &ctx.Request.Header
	referer := req.Referer()
	// Only a project with allowed hosts needs the page host: the url
	// parameter is not even looked for otherwise (most projects).
	var urlBuf [maxPageURLPrefix]byte
	if project.RestrictsHosts() && !project.AllowsHost(pageHostOf(&urlBuf, query, referer)) {
		h.hostNotAllowed.Inc()
		WriteGIF(ctx, fasthttp.StatusForbidden, reasonHost)
		return
	}
	if !head && !h.limiter.Allow(&entry.Bucket) {
		h.rateLimited.Inc()
		WriteGIF(ctx, fasthttp.StatusTooManyRequests, reasonRateLimited)
		return
	}

	WriteGIF(ctx, fasthttp.StatusOK, nil)
	if head {
		// Snowplow counts HEAD as a hit and inflates counts; a HEAD fetches
		// nothing a person sees.
		h.head.Inc()
		return
	}

	// Publish encodes the record before it returns, so its fields point
	// into the request's buffers instead of copying them (see text).
	r := h.queue.NewRecord()
	now := ctx.Time().UnixNano()
	r.SchemaVersion = hit.SchemaVersion
	r.EventID = hit.NewEventID(now)
	r.ReceivedAtNs = now
	r.APIKey = key
	r.ProjectID = readOnly(project.ID)
	r.ClientIP = h.clientIP(ctx)
	r.UserAgent = text(req.UserAgent())
	r.Referer = text(referer)
	r.Host = text(host)
	r.Query = text(query)
	r.AcceptLanguage = text(req.PeekCanonical(hdrAcceptLanguage))
	r.DNT = isOne(req.PeekCanonical(hdrDNT))
	r.GPC = isOne(req.PeekCanonical(hdrSecGPC))
	r.Prefetch = Speculative(req.PeekCanonical(hdrSecPurpose), req.PeekCanonical(hdrPurpose), req.PeekCanonical(hdrXMoz), req.PeekCanonical(hdrXPurpose))
	r.Hints.UA = text(req.PeekCanonical(hdrCHUA))
	r.Hints.Mobile = text(req.PeekCanonical(hdrCHMobile))
	r.Hints.Platform = text(req.PeekCanonical(hdrCHPlatform))
	r.Hints.PlatformVersion = text(req.PeekCanonical(hdrCHPlatformVer))
	r.Hints.Model = text(req.PeekCanonical(hdrCHModel))
	r.Hints.FullVersionList = text(req.PeekCanonical(hdrCHFullVersions))
	r.EdgeInstance = h.instance
	r.Method = text(ctx.Method())
	r.IPMode = readOnly(project.IPMode)
	r.HonourSignals = project.HonourSignals
	// A full queue is counted and logged by the queue; the visitor still
	// gets the pixel, because a pixel cannot retry anyway.
	h.queue.Publish(r)
	h.accepted.Inc()
}

// clientIP applies the trusted-proxy rules to the socket peer and, only if
// that peer is trusted, the X-Forwarded-For headers.
func (h *Handler) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	switch a := ctx.RemoteAddr().(type) {
	case *net.TCPAddr:
		peer = a.AddrPort().Addr()
	case *net.UDPAddr:
		peer = a.AddrPort().Addr()
	}
	if !h.ips.Trusted(peer) {
		return peer.Unmap()
	}
	return h.ips.ClientIP(peer, ctx.Request.Header.PeekAll(hdrXFF))
}

// readOnly returns s's bytes without copying them, for record fields,
// which Publish only reads (copying a string into a fresh slice would
// allocate on every hit).
func readOnly(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func isOne(v []byte) bool { return len(v) == 1 && v[0] == '1' }

// pageHostOf returns the host of the page the pixel is on: from the url
// parameter, else the Referer. Browsers send an origin-only Referer to other
// origins, so the page URL a site passes explicitly is the better witness.
// A url too long to decode here (its host could be cut) is treated as
// unreadable, like a url that is not a URL.
// buf holds a decoded url; the result may point into it.
func pageHostOf(urlBuf *[maxPageURLPrefix]byte, query, referer []byte) []byte {
	pageURL, _ := queryParam(query, "url")
	if escaped(pageURL) {
		var cut bool
		if pageURL, cut = decodeInto(urlBuf[:0], pageURL); cut {
			pageURL = nil
		}
	}
	if host := PageHost(pageURL); host != nil {
		return host
	}
	return PageHost(referer)
}
