package pixel

import "bytes"

// PageHost returns the host of an absolute URL such as the page URL a site
// passes in url= or the browser's Referer: the authority after "scheme://"
// (or "//"), without user info and port, and for IPv6 literals without the
// brackets. It returns nil when u has no authority (a relative or malformed
// URL). The result aliases u; case is left as sent. It does not allocate.
//
// It is deliberately small rather than a full RFC 3986 parser: the answer is
// only compared against a project's allowed hosts, and anything it cannot
// read yields no host, which the caller treats like a missing Referer.
func PageHost(u []byte) []byte {
	var rest []byte
	if i := bytes.Index(u, schemeSep); i > 0 && validScheme(u[:i]) {
		rest = u[i+len(schemeSep):]
	} else if bytes.HasPrefix(u, schemeSep[1:]) {
		rest = u[2:] // scheme-relative "//host/path"
	} else {
		return nil
	}
	// The authority ends at the first '/', '?' or '#'; browsers also treat
	// '\' as a path separator in http(s) URLs.
	for i, c := range rest {
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			rest = rest[:i]
			break
		}
	}
	if i := bytes.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if len(rest) > 0 && rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return nil
		}
		rest = rest[1:end]
	} else if i := bytes.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	if len(rest) == 0 {
		return nil
	}
	return rest
}

var schemeSep = []byte("://")

// validScheme follows RFC 3986: a letter, then letters, digits, '+', '-'
// or '.'.
func validScheme(s []byte) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
