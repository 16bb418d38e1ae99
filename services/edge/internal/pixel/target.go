package pixel

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// target returns the query string and the host of a request for Path, read
// straight from the request line and the Host header, with ok true; for any
// other request it returns ok false, and the caller asks fasthttp.
//
// fasthttp's ctx.Path, ctx.URI and ctx.Host parse the whole URI on first
// use: they check it for control bytes, copy its path and query, decode and
// normalise the path, and parse the host. That was 7 % of a hit's handler
// CPU in BenchmarkHandlerMix, for a path the edge only compares with one
// constant. Here the request line is taken as it is when it can only mean
// the result fasthttp would give: an origin-form target that is exactly Path
// up to its query or fragment (nothing for normalisation to change), and a
// Host of lower-case letters, digits, dots and hyphens with an optional
// numeric port (nothing for host parsing to decode, lower-case or refuse).
// fasthttp has already refused control bytes anywhere in the request line
// while reading it. FuzzTarget checks that every target accepted here gives
// fasthttp's own path, query and host. Everything else (percent-escapes or
// dot segments in the path, an absolute-form target, an upper-case or
// bracketed host, no Host at all) takes fasthttp's parse, as before.
func target(req *fasthttp.RequestHeader) (query, host []byte, ok bool) {
	uri := req.RequestURI()
	if len(uri) < len(Path) || string(uri[:len(Path)]) != Path {
		return nil, nil, false
	}
	rest := uri[len(Path):]
	if len(rest) > 0 {
		switch rest[0] {
		case '?':
			query = rest[1:]
			if i := bytes.IndexByte(query, '#'); i >= 0 {
				query = query[:i]
			}
		case '#':
		default:
			return nil, nil, false
		}
	}
	host = req.Host()
	if !plainHost(host) {
		return nil, nil, false
	}
	return query, host, true
}

// plainHost reports whether h is a host name fasthttp's URI would keep byte
// for byte: lower-case letters, digits, dots and hyphens, then optionally a
// colon and one to five digits.
func plainHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for i, c := range h {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-':
		case c == ':':
			port := h[i+1:]
			if len(port) == 0 || len(port) > 5 {
				return false
			}
			for _, d := range port {
				if d < '0' || d > '9' {
					return false
				}
			}
			return i > 0
		default:
			return false
		}
	}
	return true
}
