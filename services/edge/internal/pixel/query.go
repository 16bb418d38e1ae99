package pixel

import (
	"bytes"
	"unicode/utf8"
)

// queryParam finds the first parameter called name in the raw query q and
// returns its value as sent (still escaped). It reads the query once, up to
// that parameter, and builds no table: fasthttp's QueryArgs would parse
// every parameter of a request with thousands of them into a
// per-connection table that stays that big. Names and values follow
// fasthttp's Args, which the edge used before: pairs are split on '&', the
// name ends at the first '=', a parameter without '=' has an empty value,
// and names are compared decoded (see decodeInto).
func queryParam(q []byte, name string) (raw []byte, found bool) {
	for len(q) > 0 {
		pair := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		rawName, rawValue := pair, pair[len(pair):]
		if i := bytes.IndexByte(pair, '='); i >= 0 {
			rawName, rawValue = pair[:i], pair[i+1:]
		}
		if nameIs(rawName, name) {
			return rawValue, true
		}
	}
	return nil, false
}

// escaped reports whether raw needs decodeInto.
func escaped(raw []byte) bool {
	return bytes.IndexByte(raw, '%') >= 0 || bytes.IndexByte(raw, '+') >= 0
}

// nameIs reports whether raw decodes to name.
func nameIs(raw []byte, name string) bool {
	if !escaped(raw) {
		return string(raw) == name
	}
	if len(raw) > 3*len(name) {
		return false // an escape is 3 bytes for 1
	}
	var buf [48]byte
	d, truncated := decodeInto(buf[:0:min(len(buf), len(name)+1)], raw)
	return !truncated && string(d) == name
}

// decodeInto appends the decoding of src to dst without growing it past
// its capacity: "%XX" is a byte, an invalid escape is kept as is (a cut-off
// one with the rest of src), '+' is a space, as in fasthttp's Args.
func decodeInto(dst, src []byte) (out []byte, truncated bool) {
	for i := 0; i < len(src); i++ {
		if len(dst) == cap(dst) {
			return dst, true
		}
		c := src[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(src) {
				// fasthttp keeps a cut-off escape and everything after
				// it as sent, '+' included.
				for _, c := range src[i:] {
					if len(dst) == cap(dst) {
						return dst, true
					}
					dst = append(dst, c)
				}
				return dst, false
			}
			if x1, x2 := unhex(src[i+1]), unhex(src[i+2]); x1 < 16 && x2 < 16 {
				c = x1<<4 | x2
				i += 2
			}
		}
		dst = append(dst, c)
	}
	return dst, false
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}

// text returns src if it is valid UTF-8, else a copy with every run of
// invalid bytes replaced by U+FFFD (see appendText), which allocates: only
// broken clients send such bytes.
func text(src []byte) []byte {
	if utf8.Valid(src) {
		return src
	}
	return appendText(nil, src)
}

// appendText appends src to dst with every run of bytes that is not valid
// UTF-8 replaced by U+FFFD, as strings.ToValidUTF8 does, without
// allocating beyond dst's growth. Records carry these fields as protobuf
// strings, which must be UTF-8: a strict decoder (Java's, Python's, Go's
// google.golang.org/protobuf) rejects the whole record otherwise.
// Percent-escapes are text and are kept as sent.
func appendText(dst, src []byte) []byte {
	if utf8.Valid(src) {
		return append(dst, src...)
	}
	invalid := false
	for len(src) > 0 {
		r, n := utf8.DecodeRune(src)
		if r == utf8.RuneError && n == 1 {
			if !invalid {
				dst = append(dst, "\uFFFD"...)
				invalid = true
			}
		} else {
			dst = append(dst, src[:n]...)
			invalid = false
		}
		src = src[n:]
	}
	return dst
}
