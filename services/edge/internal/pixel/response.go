// Package pixel answers tracking-pixel requests and turns accepted ones into
// raw hit records.
//
// Every answer carries the same 43-byte transparent GIF, errors included:
// an <img> tag cannot act on an error status, and a missing image can show
// as a broken-image icon on the customer's page. The status code and an
// X-Pixelstream-Error header say what went wrong for whoever debugs it.
package pixel

import (
	"github.com/pixelstream/pixelstream/pkg/pixelgif"
	"github.com/valyala/fasthttp"
)

// GIF is the pixel every response carries (pkg/pixelgif).
var GIF = pixelgif.GIF

// Response header names and values, built once so that writing a response
// copies bytes and converts nothing.
var (
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
	pixelgif.Write(&ctx.Response, status)
	if len(reason) > 0 {
		ctx.Response.Header.SetCanonical(hError, reason)
	}
}
