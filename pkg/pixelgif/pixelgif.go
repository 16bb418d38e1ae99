// Package pixelgif is the tracking pixel itself: the 43-byte transparent
// GIF and the headers every answer carries. The edge answers with it, and
// the benchmark's bare baseline server sends byte-identical answers through
// the same function, so the two are compared on equal terms.
package pixelgif

import "github.com/valyala/fasthttp"

// GIF is the 1x1 transparent GIF89a (the de facto tracking pixel, 43
// bytes). It is served with SetBodyRaw, which shares the slice with every
// response, so it must never be modified.
var GIF = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0xf0, 0x00, 0x00, 0xff, 0xff, 0xff,
	0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

// Header names and values, built once so that writing a response copies
// bytes and converts nothing.
var (
	hContentType  = []byte("image/gif")
	hCacheControl = []byte(fasthttp.HeaderCacheControl)
	vCacheControl = []byte("no-cache, no-store, must-revalidate, max-age=0")
	hPragma       = []byte(fasthttp.HeaderPragma)
	vPragma       = []byte("no-cache")
	hExpires      = []byte(fasthttp.HeaderExpires)
	vExpires      = []byte("0")
	hCORP         = []byte("Cross-Origin-Resource-Policy")
	vCORP         = []byte("cross-origin")
)

// Write sets resp to the pixel with the given status. The headers forbid
// every cache (a cached pixel is an uncounted view; Gmail's image proxy
// honours these) and carry Cross-Origin-Resource-Policy: cross-origin so
// pages with Cross-Origin-Embedder-Policy: require-corp still load it. It
// does not allocate. For HEAD requests fasthttp sends the same headers,
// Content-Length included, without the body.
func Write(resp *fasthttp.Response, status int) {
	resp.SetStatusCode(status)
	h := &resp.Header
	h.SetContentTypeBytes(hContentType)
	h.SetCanonical(hCacheControl, vCacheControl)
	h.SetCanonical(hPragma, vPragma)
	h.SetCanonical(hExpires, vExpires)
	h.SetCanonical(hCORP, vCORP)
	resp.SetBodyRaw(GIF)
}
