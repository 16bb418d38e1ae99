package device

import (
	"bufio"
	"compress/gzip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ua-parser/uap-go/uaparser"
)

// corpus returns the User-Agents of testdata/useragents.txt.gz.
func corpus(tb testing.TB) []string {
	tb.Helper()
	f, err := os.Open("testdata/useragents.txt.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) < 5000 {
		tb.Fatalf("corpus has %d strings, want the 5,660 of testdata/README.md", len(out))
	}
	return out
}

// plainUAP is uap-go with its caches as small as they go, parsing every
// expression in order: the reference the prefilter must agree with.
func plainUAP(tb testing.TB) *uaparser.Parser {
	tb.Helper()
	u, err := uaparser.New(uaparser.WithCacheSize(1))
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func assertSame(t *testing.T, u *uaparser.Parser, f *filtered, line string) {
	t.Helper()
	ua, os, d := f.parse(line)
	if want := u.ParseUserAgent(line); *ua != *want {
		t.Errorf("%q: user agent %+v, uap-go says %+v", line, *ua, *want)
	}
	if want := u.ParseOs(line); *os != *want {
		t.Errorf("%q: os %+v, uap-go says %+v", line, *os, *want)
	}
	if want := u.ParseDevice(line); *d != *want {
		t.Errorf("%q: device %+v, uap-go says %+v", line, *d, *want)
	}
}

// TestPrefilterMatchesUAP: on 5,660 real User-Agents the prefiltered parse
// gives exactly what uap-go gives. Under the race detector (20 ms per plain
// parse) every 20th string is checked; scripts/test.sh also runs this test
// without it, over the whole corpus.
func TestPrefilterMatchesUAP(t *testing.T) {
	lines := corpus(t)
	step := 1
	if raceEnabled {
		step = 20
	}
	u := plainUAP(t)
	f := newFiltered(u)
	checked := 0
	for i := 0; i < len(lines); i += step {
		assertSame(t, u, f, lines[i])
		checked++
	}
	t.Logf("%d User-Agents parsed identically", checked)
}

// TestPrefilterEdgeCases covers lines the corpus lacks: empty, non-ASCII
// (never prefiltered: Go folds U+212A KELVIN SIGN to "k"), case variants of
// a required literal, and uap-go's "Other" fallbacks.
func TestPrefilterEdgeCases(t *testing.T) {
	u := plainUAP(t)
	f := newFiltered(u)
	for _, line := range []string{
		"",
		"x",
		"Mozilla/5.0",
		"Mozilla/5.0 (Linux; Android 14; SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		"MOZILLA/5.0 (LINUX; ANDROID 14; SM-S928B) APPLEWEBKIT/537.36 CHROME/131.0.0.0 MOBILE SAFARI/537.36",
		"mozilla/5.0 (iphone; cpu iphone os 17_6 like mac os x) applewebkit/605.1.15 mobile/15e148 [fban/fbios;fbav/471.0.0.35.107]",
		"Googlebot/2.1 (+http://www.google.com/bot.html)",
		"GOOGLEBOT/2.1",
		"Mozilla/5.0 (compatible; \u212Aoogle) Bot",
		"Mozilla/5.0 (Linux; Android 13; Pixel 7) \u00e9 Chrome/120.0",
		"\xff\xfe invalid UTF-8 Firefox/120.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
	} {
		assertSame(t, u, f, line)
	}
}

// TestNeedAdmitsMatches: for each expression, strings it matches are admitted
// by its need and the need rejects a string lacking its literals.
func TestNeedAdmitsMatches(t *testing.T) {
	tests := []struct {
		expr    string
		matches []string
		rejects []string
	}{
		{`(FBAN|FBAV)/(\d+)`, []string{"x FBAV/4 y", "FBAN/1"}, []string{"Mozilla/5.0 Chrome/1"}},
		{`\b(Series 60|SymbOS|S60Version|S60V\d|S60\b)`, []string{"SymbOS", "S60V3", "a S60 b"}, []string{"Series 6", "S6"}},
		{`(?i); {0,2}(SAMSUNG[ _\-]|)(?:SAMSUNG[ _\-])([^;/]{1,100}) Build`, []string{";samsung-x Build", "; SAMSUNG SAMSUNG x Build"}, []string{"; Samsung"}},
		{`Mozilla.{1,200}Android.{1,200}(GSA)/(\d+)\.(\d+)\.(\d+)`, []string{"Mozilla/5.0 (Android 14) GSA/1.2.3"}, []string{"Mozilla/5.0 (Android 14) Chrome/1.2.3"}},
		{`(?:^LG[\-]?|^LGE[\-/]?)([A-Za-z]+[0-9]+[A-Za-z]*)`, []string{"LG-KU990", "LGE/ab1"}, []string{"Mozilla"}},
		{`[Bb]ot|[Ss]pider`, []string{"Googlebot", "BaiduSpider"}, []string{"Chrome"}},
		{`(a|b)+c`, []string{"abc", "aac"}, nil}, // one-byte literals: never filtered
		{`x*`, []string{"", "xx"}, nil},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.expr)
		lits := newTrie()
		var cn *compiledNeed
		if n := needOf(re); n != nil {
			cn = &compiledNeed{}
			for _, set := range n.sets {
				var ids []int32
				for _, l := range set {
					ids = append(ids, lits.add(l))
				}
				cn.sets = append(cn.sets, ids)
			}
		}
		admits := func(s string) bool {
			found := make([]uint64, (lits.count+63)/64+1)
			lits.scan(asciiLower(s), found)
			return cn.admits(found)
		}
		for _, s := range tt.matches {
			if !re.MatchString(s) {
				t.Fatalf("%s: test case %q does not match", tt.expr, s)
			}
			if !admits(s) {
				t.Errorf("%s: need %v rejects %q, which matches", tt.expr, needOf(re), s)
			}
		}
		for _, s := range tt.rejects {
			if re.MatchString(s) {
				t.Fatalf("%s: reject case %q matches", tt.expr, s)
			}
			if admits(s) {
				t.Errorf("%s: need %v admits %q", tt.expr, needOf(re), s)
			}
		}
	}
}

// TestTrieFindsOverlappingLiterals: every literal present is found, also
// those inside or overlapping another.
func TestTrieFindsOverlappingLiterals(t *testing.T) {
	tr := newTrie()
	words := []string{"android", "droid", "and", "ndr", "id 1", "zzz", "\u00e9t\u00e9"}
	ids := map[string]int32{}
	for _, w := range words {
		ids[w] = tr.add(w)
	}
	if tr.add("droid") != ids["droid"] {
		t.Fatal("the same literal got a second id")
	}
	found := make([]uint64, 1)
	tr.scan("mozilla (android 14)", found)
	for w, want := range map[string]bool{"android": true, "droid": true, "and": true, "ndr": true, "id 1": true, "zzz": false, "\u00e9t\u00e9": false} {
		id := ids[w]
		if got := found[id>>6]&(1<<(id&63)) != 0; got != want {
			t.Errorf("%q found = %v, want %v", w, got, want)
		}
	}
}

// FuzzPrefilter: whatever the User-Agent, the prefiltered parse gives
// exactly uap-go's result.
func FuzzPrefilter(f *testing.F) {
	for _, s := range []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/22B83 [FBAN/FBIOS;FBAV/464.0.0.29.13;FBBV/653989230;FBDV/iPhone12,8]",
		"Mozilla/5.0 (Linux; Android 13; KFTRWI Build/TKQ1.221114.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6462.155 Mobile Safari/537.36 trill_363080",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"SonyEricssonK750i/R1CA Browser/SEMC-Browser/4.2 Profile/MIDP-2.0",
		"LG-KU990 Obigo/WAP2.0",
		"Mozilla/5.0 (Symbian/3; Series60/5.2 NokiaN8-00/012.002)",
	} {
		f.Add(s)
	}
	u := plainUAP(f)
	flt := newFiltered(u)
	f.Fuzz(func(t *testing.T, line string) {
		if len(line) > MaxUALength {
			line = line[:MaxUALength]
		}
		assertSame(t, u, flt, line)
	})
}

// BenchmarkUncachedParse compares a plain uap-go parse with the prefiltered
// one on the corpus (every call a miss): the ratio is the prefilter's gain.
func BenchmarkUncachedParse(b *testing.B) {
	lines := corpus(b)
	u := plainUAP(b)
	f := newFiltered(u)
	for _, set := range []struct {
		name  string
		lines []string
	}{
		{"uap-go-uas", lines[:2515]},     // the uap-go module's strings: old phones, bots
		{"realistic-tail", lines[2515:]}, // the benchmark mix: in-app, WebView
	} {
		b.Run(set.name+"/uap-go", func(b *testing.B) {
			i := 0
			for b.Loop() {
				l := set.lines[i%len(set.lines)]
				u.ParseUserAgent(l)
				u.ParseOs(l)
				u.ParseDevice(l)
				i++
			}
		})
		b.Run(set.name+"/prefiltered", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f.parse(set.lines[i%len(set.lines)])
				i++
			}
		})
	}
}

// TestTrieScanFindsExactlyTheLiterals checks the frozen trie of the real
// expressions against strings.Contains for every literal, over the
// corpus: a literal is found if and only if the lowercased line holds it.
func TestTrieScanFindsExactlyTheLiterals(t *testing.T) {
	p, err := New("", 0)
	if err != nil {
		t.Fatal(err)
	}
	tr := p.uap.lits
	lits := make([]string, tr.count)
	for l, id := range tr.ids {
		lits[id] = l
	}
	lines := corpus(t)
	if testing.Short() {
		lines = lines[:1200]
	}
	found := make([]uint64, (tr.count+63)/64)
	checked := 0
	for _, ua := range lines {
		if !isASCII(ua) {
			continue
		}
		line := asciiLower(ua)
		clear(found)
		tr.scan(line, found)
		for id, l := range lits {
			want := isASCII(l) && strings.Contains(line, l)
			if got := found[id>>6]&(1<<(id&63)) != 0; got != want {
				t.Fatalf("%q: literal %q found = %v, want %v", line, l, got, want)
			}
		}
		checked++
	}
	if checked < 1000 {
		t.Fatalf("only %d ASCII lines checked", checked)
	}
}
