package pixel

import (
	"bytes"

	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
)

// Speculative reports whether request headers mark a load the user may never
// see: a prefetch or prerender. Such hits are recorded with Prefetch set so
// that downstream counts can leave them out (Matomo does not count them).
//
//   - Sec-Purpose (standard, a structured-field list): any item whose token is
//     "prefetch", parameters allowed ("prefetch;prerender",
//     "prefetch;anonymous-client-ip").
//   - Purpose (legacy Chrome): same syntax, token "prefetch".
//   - X-Moz (Firefox): "prefetch".
//   - X-Purpose (Safari): "preview" (or "prefetch").
//
// Tokens compare ASCII case-insensitively. It does not allocate.
func Speculative(secPurpose, purpose, xMoz, xPurpose []byte) bool {
	return hasToken(secPurpose, tokPrefetch, nil) ||
		hasToken(purpose, tokPrefetch, nil) ||
		hasToken(xMoz, tokPrefetch, nil) ||
		hasToken(xPurpose, tokPreview, tokPrefetch)
}

var (
	tokPrefetch = []byte("prefetch")
	tokPreview  = []byte("preview")
)

// hasToken reports whether the comma-separated list v has an item whose
// token (the part before any ';' parameters, spaces trimmed) equals a or b.
func hasToken(v, a, b []byte) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if i := bytes.IndexByte(item, ';'); i >= 0 {
			item = item[:i]
		}
		item = clientip.TrimOWS(item)
		if equalFold(item, a) || (b != nil && equalFold(item, b)) {
			return true
		}
	}
	return false
}

// equalFold compares s to the lower-case ASCII token t, ignoring ASCII case.
func equalFold(s, t []byte) bool {
	if len(s) != len(t) {
		return false
	}
	for i, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}
