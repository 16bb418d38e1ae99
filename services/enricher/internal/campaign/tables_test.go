package campaign

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// lowerASCIIRef is the definition that knownKeys lookups use: ASCII letters
// folded, every other byte kept.
func lowerASCIIRef(b []byte) string {
	l := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	return string(l)
}

// wantKind is the map lookup that lookupKey replaces.
func wantKind(name []byte) keyKind {
	if len(name) > maxKnownKeyLen {
		return kindOther
	}
	return knownKeys[lowerASCIIRef(name)]
}

// inBuf returns name in a buffer of scanQuery's size, with junk after it,
// as keyWords sees names there.
func inBuf(name []byte) []byte {
	buf := bytes.Repeat([]byte{0xA5}, MaxNameLen)
	return buf[:copy(buf, name)]
}

func checkLookup(t *testing.T, name []byte) {
	t.Helper()
	if len(name) > maxKnownKeyLen {
		return
	}
	want := wantKind(name)
	short := append([]byte(nil), name...)[:len(name):len(name)] // keyWords' other path
	if got := lookupKey(inBuf(name)); got != want {
		t.Fatalf("lookupKey(%q) = %d in a buffer, knownKeys says %d", name, got, want)
	}
	if got := lookupKey(short); got != want {
		t.Fatalf("lookupKey(%q) = %d, knownKeys says %d", name, got, want)
	}
}

func TestLookupKeyAgreesWithKnownKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, kind := range knownKeys {
		if len(name) > maxKnownKeyLen {
			t.Fatalf("%q is longer than maxKnownKeyLen", name)
		}
		if kind == kindOther {
			t.Fatalf("%q has kind kindOther", name)
		}
		b := []byte(name)
		checkLookup(t, b)
		checkLookup(t, bytes.ToUpper(b))
		for range 20 { // mixed case
			m := append([]byte(nil), b...)
			for i := range m {
				if r.IntN(2) == 0 {
					m[i] = bytes.ToUpper(m[i : i+1])[0]
				}
			}
			checkLookup(t, m)
		}
		// Near misses: prefixes, extensions, one byte changed.
		for i := range len(b) {
			checkLookup(t, b[:i])
			for _, c := range []byte{0, 'x', '_', 0x80, 0xFF, b[i] ^ 0x20, b[i] + 1} {
				m := append([]byte(nil), b...)
				m[i] = c
				checkLookup(t, m)
			}
		}
		for _, c := range []byte{0, 'x', 0xC0} {
			checkLookup(t, append(append([]byte(nil), b...), c))
		}
	}
	// Every name of one and two bytes.
	for a := range 256 {
		checkLookup(t, []byte{byte(a)})
		for b := range 256 {
			checkLookup(t, []byte{byte(a), byte(b)})
		}
	}
	// Random names over the alphabet of the known ones.
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\x00\x80\xC3"
	for range 200000 {
		n := make([]byte, 1+r.IntN(maxKnownKeyLen))
		for i := range n {
			n[i] = alphabet[r.IntN(len(alphabet))]
		}
		checkLookup(t, n)
	}
}

func TestLowerASCII(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for pos := range 8 {
		for c := range 256 {
			var b [8]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[pos] = byte(c)
			w := uint64(0)
			for i := range b {
				w |= uint64(b[i]) << (8 * i)
			}
			want := lowerASCIIRef(b[:])
			got := lowerASCII(w)
			for i := range 8 {
				if byte(got>>(8*i)) != want[i] {
					t.Fatalf("lowerASCII(%x) = %x, byte %d: want %#x", w, got, i, want[i])
				}
			}
		}
	}
}

func TestFormClass(t *testing.T) {
	for c := range 256 {
		want := uint8(0)
		switch c {
		case '&':
			want = stopAmp
		case '=':
			want = stopEq
		case '+':
			want = classPlus
		case '%':
			want = classPercent
		}
		if formClass[c] != want {
			t.Errorf("formClass[%#x] = %d, want %d", c, formClass[c], want)
		}
	}
}

func TestUnhexTab(t *testing.T) {
	for c := range 256 {
		v, err := strconv.ParseUint(string(rune(c)), 16, 8)
		if c >= utf8.RuneSelf {
			err = strconv.ErrSyntax
		}
		switch {
		case err == nil && uint64(unhexTab[c]) != v:
			t.Errorf("unhexTab[%#x] = %d, want %d", c, unhexTab[c], v)
		case err != nil && unhexTab[c] != 0xFF:
			t.Errorf("unhexTab[%#x] = %d, want 0xFF", c, unhexTab[c])
		}
		for d := range 256 {
			if got, want := unhexTab[c]|unhexTab[d] < 16, isHex(byte(c)) && isHex(byte(d)); got != want {
				t.Fatalf("pair %#x %#x: table says %v, isHex %v", c, d, got, want)
			}
		}
	}
}

func TestURLClass(t *testing.T) {
	for c := range 256 {
		want := uint8(0)
		switch {
		case c == '/':
			want = delimSlash
		case c == '?':
			want = delimQuery
		case c == '#':
			want = delimFragment
		case c == '@':
			want = classAt
		case c == ':':
			want = classColon
		case 'A' <= c && c <= 'Z':
			want = classUpper
		}
		if urlClass[c] != want {
			t.Errorf("urlClass[%#x] = %d, want %d", c, urlClass[c], want)
		}
	}
}

// decodeRef is appendDecoded as it was before it learned to stop at
// separators: the caller cut the field first.
func decodeRef(dst, src []byte, limit int) ([]byte, Flags) {
	var f Flags
	n := 0
	for len(src) > 0 {
		if n == limit {
			return dst, f | FlagTruncated
		}
		c := src[0]
		src = src[1:]
		if c == '+' {
			c = ' '
		} else if c == '%' && len(src) >= 2 && isHex(src[0]) && isHex(src[1]) {
			c = unhex(src[0])<<4 | unhex(src[1])
			src = src[2:]
		} else if c == '%' {
			f |= FlagBadEncoding
		}
		dst = append(dst, c)
		n++
	}
	return dst, f
}

func checkDecoded(t *testing.T, src []byte, limit int, stop uint8) {
	t.Helper()
	end := len(src)
	for i, c := range src {
		if formClass[c]&stop != 0 {
			end = i
			break
		}
	}
	want, wantF := decodeRef([]byte("prefix"), src[:end], limit)
	got, gotF, ascii, used := appendDecoded([]byte("prefix"), src, limit, stop)
	if string(got) != string(want) || gotF != wantF {
		t.Fatalf("appendDecoded(%q, %d, %d) = %q, %b; want %q, %b", src, limit, stop, got, gotF, want, wantF)
	}
	if ascii != (bytes.IndexFunc(got, func(r rune) bool { return r >= utf8.RuneSelf }) < 0) {
		t.Fatalf("appendDecoded(%q): ascii %v for %q", src, ascii, got)
	}
	if !gotF.Has(FlagTruncated) && used != end {
		t.Fatalf("appendDecoded(%q, %d, %d) read %d bytes, the field has %d", src, limit, stop, used, end)
	}
	if used > end {
		t.Fatalf("appendDecoded(%q, %d, %d) read %d bytes, past the field's %d", src, limit, stop, used, end)
	}
}

func TestAppendDecoded(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const alphabet = "%+&=aF0g9\xC3\xA9\xFF "
	for range 300000 {
		src := make([]byte, r.IntN(24))
		for i := range src {
			src[i] = alphabet[r.IntN(len(alphabet))]
		}
		limit := r.IntN(len(src) + 2)
		checkDecoded(t, src, limit, stopAmp)
		checkDecoded(t, src, limit, stopAmp|stopEq)
		checkDecoded(t, src, MaxValueLen, stopAmp)
	}
}

func FuzzAppendDecoded(f *testing.F) {
	for _, s := range []string{"a%2", "%41%4", "x+y=z&w", "%%41", "%E9%", "abc&def", "=", strings.Repeat("%41", 10)} {
		f.Add([]byte(s), 5)
	}
	f.Fuzz(func(t *testing.T, src []byte, limit int) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		checkDecoded(t, src, limit, stopAmp)
		checkDecoded(t, src, limit, stopAmp|stopEq)
	})
}

// splitURLRef is splitURL as it was before the authority was scanned in one
// pass: each part found by its own search.
func splitURLRef(s []byte) (host, path, query string, slash bool) {
	indexAny := func(s []byte, chars string) int {
		for i, c := range s {
			if strings.IndexByte(chars, c) >= 0 {
				return i
			}
		}
		return -1
	}
	i := schemeLen(s)
	if i > 0 {
		i++
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
		host = lowerASCIIRef(s[hostStart:hostEnd])
		i = authEnd
	}
	pathEnd := len(s)
	if j := indexAny(s[i:], "?#"); j >= 0 {
		pathEnd = i + j
	}
	path = string(s[i:pathEnd])
	slash = hasAuthority && pathEnd == i
	if pathEnd < len(s) && s[pathEnd] == '?' {
		qEnd := len(s)
		if j := bytes.IndexByte(s[pathEnd+1:], '#'); j >= 0 {
			qEnd = pathEnd + 1 + j
		}
		query = string(s[pathEnd+1 : qEnd])
	}
	return host, path, query, slash
}

func checkSplitURL(t *testing.T, u []byte) {
	t.Helper()
	var sc scratch
	sc.buf = append(sc.buf, "junk"...)
	sc.buf = append(sc.buf, u...)
	sp := span{4, int32(len(sc.buf))}
	host, path, query, slash := sc.splitURL(sp, false)
	str := func(s span) string { return string(sc.buf[s.a:s.b]) }
	wh, wp, wq, ws := splitURLRef(u)
	if str(host) != wh || str(path) != wp || str(query) != wq || slash != ws {
		t.Fatalf("splitURL(%q) = %q %q %q %v; want %q %q %q %v", u, str(host), str(path), str(query), slash, wh, wp, wq, ws)
	}
	if host2, _, _, _ := sc.splitURL(sp, true); str(host2) != wh {
		t.Fatalf("splitURL(%q, hostOnly) = %q; want %q", u, str(host2), wh)
	}
}

func TestSplitURLAgreesWithReference(t *testing.T) {
	for _, u := range []string{"https://Shop.Example.COM:8443/path/x?utm_source=ref#f", "http://user:secret@[2001:DB8::1]:8080/x?y=1",
		"https://u@Example.org:443", "//a@B@C:D:1/", "http://[::1", "http://[AB", "x://Q?#?", "/rel?q#f", "mailto:A@B", ""} {
		checkSplitURL(t, []byte(u))
	}
	r := rand.New(rand.NewPCG(7, 8))
	const alphabet = "aZ:@[]/?#.1h"
	for range 300000 {
		u := []byte("http://")
		if r.IntN(4) == 0 {
			u = u[:r.IntN(len(u)+1)]
		}
		for range r.IntN(16) {
			u = append(u, alphabet[r.IntN(len(alphabet))])
		}
		checkSplitURL(t, u)
	}
}

// TestParseOverwritesEveryField guards reset, which clears only what Parse
// does not assign: a Result full of junk must come out as a fresh one.
func TestParseOverwritesEveryField(t *testing.T) {
	cases := append([]parseCase(nil), parseCases...)
	for _, h := range mixHits(200, 9) {
		cases = append(cases, parseCase{query: string(h.query), referer: string(h.referer)})
	}
	for _, tt := range cases {
		var fresh, junk Result
		Parse([]byte(tt.query), []byte(tt.referer), &fresh)
		fillJunk(reflect.ValueOf(&junk).Elem())
		Parse([]byte(tt.query), []byte(tt.referer), &junk)
		if !reflect.DeepEqual(public(fresh), public(junk)) {
			t.Fatalf("Parse(%q, %q) into a used Result:\n got %+v\nwant %+v", tt.query, tt.referer, public(junk), public(fresh))
		}
	}
}

// fillJunk sets every exported field of v, recursively, to a non-zero value.
func fillJunk(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("junk")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint, reflect.Uint32, reflect.Uint64:
		v.SetUint(0xFF)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(-1)
	case reflect.Array:
		for i := range v.Len() {
			fillJunk(v.Index(i))
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillJunk(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillJunk(v.Field(i))
			}
		}
	default:
		panic("fillJunk: " + v.Kind().String())
	}
}
