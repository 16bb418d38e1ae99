// Package pixel answers tracking-pixel requests and turns accepted ones into
// raw hit records.
//
// Every answer carries the same 43-byte transparent GIF, errors included:
// an <img> tag cannot act on an error status, and a missing image can show
// as a broken-image icon on the customer's page. The status code and an
// X-Pixelstream-Error header say what went wrong for whoever debugs it.
package pixel

import (
	"github.com/valyala/fasthttp"
)

// GIF is the 1x1 transparent GIF89a every response carries (the de facto
// tracking pixel, 43 bytes). It is served with SetBodyRaw, which shares the
// slice with every response, so it must never be modified.
var GIF = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0xf0, 0x00, 0x00, 0xff, 0xff, 0xff,
	0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

// Response header names and values, built once so that writing a response
// copies bytes and converts nothing.
var (
	hContentType      = []byte("image/gif")
	hCacheControl     = []byte(fasthttp.HeaderCacheControl)
	vCacheControl     = []byte("no-cache, no-store, must-revalidate, max-age=0")
	hPragma           = []byte(fasthttp.HeaderPragma)
	vPragma           = []byte("no-cache")
	hExpires          = []byte(fasthttp.HeaderExpires)
	vExpires          = []byte("0")
	hCORP             = []byte("Cross-Origin-Resource-Policy")
	vCORP             = []byte("cross-origin")
	hError            = []byte(ErrorHeader)
	hAllow            = []byte(fasthttp.HeaderAllow)
	vAllow            = []byte("GET, HEAD, POST")
	reasonMissingKey  = []byte("missing key")
	reasonUnknownKey  = []byte("unknown key")
	reasonHost        = []byte("host not allowed")
	reasonNotFound    = []byte("not found")
	reasonMethod      = []byte("method not allowed")
	reasonRateLimited = []byte("rate limited")
)

// ErrorHeader names the response header that carries a short reason when a
// hit is not recorded.
const ErrorHeader = "X-Pixelstream-Error"

// WriteGIF sets ctx's response to the pixel with the given status and, when
// reason is not empty, the X-Pixelstream-Error header. The headers forbid
// every cache (a cached pixel is an uncounted view; Gmail's image proxy
// honours these) and carry Cross-Origin-Resource-Policy: cross-origin so
// pages with Cross-Origin-Embedder-Policy: require-corp still load it. It
// does not allocate. For HEAD requests fasthttp sends the same headers,
// Content-Length included, without the body.
func WriteGIF(ctx *fasthttp.RequestCtx, status int, reason []byte) {
	resp := &ctx.Response
	resp.SetStatusCode(status)
	h := &resp.Header
	h.SetContentTypeBytes(hContentType)
	h.SetCanonical(hCacheControl, vCacheControl)
	h.SetCanonical(hPragma, vPragma)
	h.SetCanonical(hExpires, vExpires)
	h.SetCanonical(hCORP, vCORP)
	if len(reason) > 0 {
		h.SetCanonical(hError, reason)
	}
	resp.SetBodyRaw(GIF)
}
