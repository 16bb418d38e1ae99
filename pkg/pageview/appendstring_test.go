package pageview

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// appendStringRef is the byte-at-a-time AppendString that the word-at-a-time
// version replaced, kept verbatim as the oracle: FuzzAppendString requires
// the two to agree byte for byte, and BenchmarkAppendStringRef measures the
// speed-up against it in the same run.
func appendStringRef(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 break JavaScript string literals.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendStringSeeds returns strings that put every kind of byte AppendString
// treats specially at and around the 8-byte word boundaries its scan uses,
// in strings whose lengths are and are not multiples of 8.
//
// The filler bytes are each one above a value the word scan tests for: '#'
// and the apostrophe (0x23, 0x27) above '"' and '&' once bit 0x04 is folded
// in, '=' and '?' above '<' and '>', ']' above '\\', and space above 0x1f.
// A borrow leaking out of a special byte into such a neighbour would flag
// the neighbour and change the output.
func appendStringSeeds() []string {
	specials := []string{
		`"`, `\`, "<", ">", "&", // backslash and \u00XX escapes
		"\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", // control characters
		"\x7f", " ", "~", // ASCII edges that are not escaped
		"é", "漢", "🙂", "\ufffd", // valid multi-byte runes, copied
		"\u2028", "\u2029", // escaped for JavaScript
		"\x80", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", // invalid UTF-8
	}
	const filler = "#'=?] "
	var seeds []string
	for _, sp := range specials {
		for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25} {
			for _, at := range []int{0, 6, 7, 8, 9, n - 2, n - 1} {
				if at < 0 || at >= n {
					continue
				}
				pad := strings.Repeat(filler, n/len(filler)+1)[:n-1]
				seeds = append(seeds,
					pad[:at]+sp+pad[at:],        // one special
					pad[:at]+sp+sp+pad[at:],     // two in a row: the second starts mid-word
					pad[:at]+sp+"\x00"+pad[at:], // followed by another kind
				)
			}
		}
	}
	return seeds
}

// decodedWant is what s must decode to after AppendString and
// encoding/json.Unmarshal: s with every byte that is not part of valid UTF-8
// replaced by U+FFFD (one per byte, not per run as strings.ToValidUTF8 does).
func decodedWant(s string) string {
	var w strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			w.WriteRune(utf8.RuneError)
		} else {
			w.WriteString(s[i : i+n])
		}
		i += n
	}
	return w.String()
}

// FuzzAppendString checks AppendString against the byte-at-a-time
// reference and encoding/json byte for byte, and that the output decodes to
// the input with only the documented replacement (invalid bytes to U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "<script>", "\u2028", "\t\n", "000\"\"#00"} {
		f.Add(s)
	}
	for _, s := range appendStringSeeds() {
		f.Add(s)
	}
	for _, c := range benchStrings {
		for _, s := range c.ss {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		if want := appendStringRef(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, reference gives %s", s, got, want)
		}
		if std, _ := json.Marshal(s); !bytes.Equal(got, std) {
			t.Fatalf("AppendString(%q) = %s, encoding/json gives %s", s, got, std)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: invalid JSON: %v", s, got, err)
		}
		if want := decodedWant(s); back != want {
			t.Fatalf("AppendString(%q) decodes to %q, want %q", s, back, want)
		}
		// It appends: what b already holds is kept.
		if got2 := AppendString([]byte("x"), s); string(got2) != "x"+string(got) {
			t.Fatalf("AppendString(\"x\", %q) = %s", s, got2)
		}
	})
}

// benchStrings is what the enricher feeds AppendString, grouped so a
// regression in one class (say, URLs with many '&') shows on its own. The
// proportions are not weighted by traffic; "all" is simply every string.
var benchStrings = []struct {
	name string
	ss   []string
}{
	{"ua", []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 328.0.3.32.100 (iPhone14,5; iOS 17_4; en_GB; en-GB; scale=3.00; 1170x2532; 590348458)",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/461.0.0.38.108;]",
	}},
	{"url", []string{
		"https://shop.example.com/products/trail-running-shoes?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale_2026&utm_term=trail+running+shoes&utm_content=ad_variant_b&gclid=Cj0KCQjw8J6wBhDXARIsAPo7QA9xYzE",
		"https://www.example.org/blog/2026/05/how-we-cut-p99-latency?ref=newsletter&utm_source=newsletter&utm_medium=email",
		"https://www.google.com/",
		"https://news.example.net/article/12345?fbclid=IwAR2x9Vb8Kq_mixed-CASE_token",
		"/checkout/confirm",
	}},
	{"short", []string{
		"", "GB", "United Kingdom", "England", "Gamlingay", "Europe/London", "desktop", "Chrome", "124.0.0", "organic_search",
		"019abc00-0000-7000-8000-000000000001", "2026-11-26T20:00:00.123456789Z", "en-GB,en;q=0.9", "Andrews & Arnold",
	}},
	{"nonascii", []string{"São Paulo", "Zürich", "Île-de-France", "Kraków", "München"}},
}

func benchAppendString(b *testing.B, appendString func([]byte, string) []byte) {
	var all []string
	for _, c := range benchStrings {
		all = append(all, c.ss...)
	}
	run := func(b *testing.B, ss []string) {
		n := 0
		for _, s := range ss {
			n += len(s)
		}
		// Every string escapes to at most 6 bytes per input byte plus the
		// quotes, so buf never grows and allocs/op must read 0.
		buf := make([]byte, 0, 6*n+2*len(ss))
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			buf = buf[:0]
			for _, s := range ss {
				buf = appendString(buf, s)
			}
		}
	}
	for _, c := range benchStrings {
		b.Run(c.name, func(b *testing.B) { run(b, c.ss) })
	}
	b.Run("all", func(b *testing.B) { run(b, all) })
}

func BenchmarkAppendString(b *testing.B)    { benchAppendString(b, AppendString) }
func BenchmarkAppendStringRef(b *testing.B) { benchAppendString(b, appendStringRef) }
