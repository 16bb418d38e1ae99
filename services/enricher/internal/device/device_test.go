package device

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// shared is one Parser for tests that do not care about its cache: building
// one compiles ~1,000 regular expressions.
var shared = sync.OnceValues(func() (*Parser, error) { return New("", 0) })

func sharedParser(t testing.TB) *Parser {
	t.Helper()
	p, err := shared()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type uaCase struct {
	name, ua string
	want     Result
}

// uaCases are real User-Agent strings as browsers, apps and crawlers send
// them.
var uaCases = []uaCase{
	{"Chrome Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Windows", OSVersion: "10", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Firefox Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
		Result{BrowserFamily: "Firefox", BrowserVersion: "133.0", OSFamily: "Windows", OSVersion: "10", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Safari macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		Result{BrowserFamily: "Safari", BrowserVersion: "18.1", OSFamily: "Mac OS X", OSVersion: "10.15.7", DeviceBrand: "Apple", DeviceModel: "Mac", DeviceFamily: "Mac", DeviceType: TypeDesktop}},
	{"Chrome macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Mac OS X", OSVersion: "10.15.7", DeviceBrand: "Apple", DeviceModel: "Mac", DeviceFamily: "Mac", DeviceType: TypeDesktop}},
	{"Edge Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
		Result{BrowserFamily: "Edge", BrowserVersion: "131.0.2903", OSFamily: "Windows", OSVersion: "10", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Opera Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
		Result{BrowserFamily: "Opera", BrowserVersion: "115.0.0", OSFamily: "Windows", OSVersion: "10", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Chrome Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "130.0.0", OSFamily: "Linux", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Firefox Ubuntu", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
		Result{BrowserFamily: "Firefox", BrowserVersion: "132.0", OSFamily: "Ubuntu", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Firefox FreeBSD", "Mozilla/5.0 (X11; FreeBSD amd64; rv:128.0) Gecko/20100101 Firefox/128.0",
		Result{BrowserFamily: "Firefox", BrowserVersion: "128.0", OSFamily: "FreeBSD", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Chrome OS", OSVersion: "14541.0.0", DeviceFamily: "Other", DeviceType: TypeDesktop}},
	{"Apple Mail macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
		Result{BrowserFamily: "Apple Mail", BrowserVersion: "605.1.15", OSFamily: "Mac OS X", OSVersion: "10.15.7", DeviceBrand: "Apple", DeviceModel: "Mac", DeviceFamily: "Mac", DeviceType: TypeDesktop}},
	{"iPhone Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
		Result{BrowserFamily: "Mobile Safari", BrowserVersion: "17.6", OSFamily: "iOS", OSVersion: "17.6.1", DeviceBrand: "Apple", DeviceModel: "iPhone", DeviceFamily: "iPhone", DeviceType: TypeMobile}},
	{"iPhone Chrome", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
		Result{BrowserFamily: "Chrome Mobile iOS", BrowserVersion: "131.0.6778", OSFamily: "iOS", OSVersion: "18.1", DeviceBrand: "Apple", DeviceModel: "iPhone", DeviceFamily: "iPhone", DeviceType: TypeMobile}},
	{"iPad Safari", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
		Result{BrowserFamily: "Mobile Safari", BrowserVersion: "17.6", OSFamily: "iOS", OSVersion: "17.6", DeviceBrand: "Apple", DeviceModel: "iPad", DeviceFamily: "iPad", DeviceType: TypeTablet}},
	{"Android Chrome phone (reduced UA)", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		Result{BrowserFamily: "Chrome Mobile", BrowserVersion: "131.0.0", OSFamily: "Android", OSVersion: "10", DeviceFamily: "K", DeviceType: TypeMobile}},
	{"Android Chrome Pixel", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
		Result{BrowserFamily: "Chrome Mobile", BrowserVersion: "131.0.6778", OSFamily: "Android", OSVersion: "14", DeviceBrand: "Google", DeviceModel: "Pixel 8", DeviceFamily: "Pixel 8", DeviceType: TypeMobile}},
	{"Android Chrome Motorola", "Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
		Result{BrowserFamily: "Chrome Mobile", BrowserVersion: "131.0.0", OSFamily: "Android", OSVersion: "12", DeviceBrand: "Motorola", DeviceModel: "g(60)", DeviceFamily: "Motorola g(60)", DeviceType: TypeMobile}},
	{"Android Chrome tablet (reduced UA)", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Android", OSVersion: "10", DeviceFamily: "K", DeviceType: TypeTablet}},
	{"Galaxy Tab A9 Chrome", "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Android", OSVersion: "13", DeviceFamily: "SM-X200", DeviceType: TypeTablet}},
	{"Lenovo Tab Chrome", "Mozilla/5.0 (Linux; Android 11; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Chrome", BrowserVersion: "131.0.0", OSFamily: "Android", OSVersion: "11", DeviceBrand: "Lenovo", DeviceModel: "TB-J606F", DeviceFamily: "Lenovo TB-J606F", DeviceType: TypeTablet}},
	{"Samsung Internet phone", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
		Result{BrowserFamily: "Samsung Internet", BrowserVersion: "26.0", OSFamily: "Android", OSVersion: "14", DeviceBrand: "Samsung", DeviceModel: "SM-S918B", DeviceFamily: "Samsung SM-S918B", DeviceType: TypeMobile}},
	{"Samsung Internet Galaxy Tab", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-T970) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Safari/537.36",
		Result{BrowserFamily: "Samsung Internet", BrowserVersion: "23.0", OSFamily: "Android", OSVersion: "13", DeviceBrand: "Samsung", DeviceModel: "SM-T970", DeviceFamily: "Samsung SM-T970", DeviceType: TypeTablet}},
	{"Firefox Android phone", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
		Result{BrowserFamily: "Firefox Mobile", BrowserVersion: "133.0", OSFamily: "Android", OSVersion: "14", DeviceFamily: "Generic Smartphone", DeviceType: TypeMobile}},
	{"Firefox Android tablet", "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
		Result{BrowserFamily: "Firefox Mobile", BrowserVersion: "133.0", OSFamily: "Android", OSVersion: "14", DeviceFamily: "Generic Tablet", DeviceType: TypeTablet}},
	{"Kindle Fire Silk", "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/130.3.5 like Chrome/130.0.6723.107 Safari/537.36",
		Result{BrowserFamily: "Amazon Silk", BrowserVersion: "130.3.5", OSFamily: "Android", OSVersion: "9", DeviceBrand: "Amazon", DeviceModel: "Kindle", DeviceFamily: "Kindle", DeviceType: TypeTablet}},
	{"Windows Phone Edge", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
		Result{BrowserFamily: "Edge Mobile", BrowserVersion: "15.15063", OSFamily: "Windows Phone", OSVersion: "10.0", DeviceBrand: "Nokia", DeviceModel: "Lumia 950", DeviceFamily: "Lumia 950", DeviceType: TypeMobile}},
	{"Facebook in-app iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/476.0.0.36.113;FBBV/629463478;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/631268741]",
		Result{BrowserFamily: "Facebook", BrowserVersion: "476.0.0", OSFamily: "iOS", OSVersion: "17.5", DeviceBrand: "Apple", DeviceModel: "iPhone15,3", DeviceFamily: "iPhone", DeviceType: TypeMobile}},
	{"Facebook in-app Android", "Mozilla/5.0 (Linux; Android 14; SM-A546B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/490.0.0.55.81;]",
		Result{BrowserFamily: "Facebook", BrowserVersion: "490.0.0", OSFamily: "Android", OSVersion: "14", DeviceBrand: "Samsung", DeviceModel: "SM-A546B", DeviceFamily: "Samsung SM-A546B", DeviceType: TypeMobile}},
	{"Instagram in-app iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 346.0.4.29.97 (iPhone14,5; iOS 17_5; en_US; en; scale=3.00; 1170x2532; 634370245)",
		Result{BrowserFamily: "Instagram", BrowserVersion: "346.0.4", OSFamily: "iOS", OSVersion: "17.5", DeviceBrand: "Apple", DeviceModel: "iPhone14,5", DeviceFamily: "iPhone", DeviceType: TypeMobile}},
	{"Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		Result{BrowserFamily: "Googlebot", BrowserVersion: "2.1", OSFamily: "Other", DeviceFamily: "Spider", DeviceType: TypeBot}},
	{"Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		Result{BrowserFamily: "Googlebot", BrowserVersion: "2.1", OSFamily: "Android", OSVersion: "6.0.1", DeviceFamily: "Spider", DeviceType: TypeBot}},
	{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		Result{BrowserFamily: "bingbot", BrowserVersion: "2.0", OSFamily: "Other", DeviceFamily: "Spider", DeviceType: TypeBot}},
	{"Facebook link preview", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		Result{BrowserFamily: "FacebookBot", BrowserVersion: "1.1", OSFamily: "Other", DeviceFamily: "Spider", DeviceType: TypeBot}},
	{"GPTBot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
		Result{BrowserFamily: "GPTBot", BrowserVersion: "1.2", OSFamily: "Other", DeviceFamily: "Spider", DeviceType: TypeBot}},
	{"Gmail image proxy", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
		Result{BrowserFamily: "GmailImageProxy", OSFamily: "Windows", OSVersion: "XP", DeviceFamily: "Other", DeviceType: TypeOther, MailProxy: true}},
	{"Yahoo mail proxy", "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
		Result{BrowserFamily: "YahooMailProxy", OSFamily: "Other", DeviceFamily: "Spider", DeviceType: TypeOther, MailProxy: true}},
	{"curl", "curl/8.5.0",
		Result{BrowserFamily: "curl", BrowserVersion: "8.5.0", OSFamily: "Other", DeviceFamily: "Other", DeviceType: TypeOther}},
	{"python-requests", "python-requests/2.32.3",
		Result{BrowserFamily: "Python Requests", BrowserVersion: "2.32", OSFamily: "Other", DeviceFamily: "Other", DeviceType: TypeOther}},
	{"Samsung smart TV", "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
		Result{BrowserFamily: "Samsung Internet", BrowserVersion: "4.0", OSFamily: "Tizen", OSVersion: "6.0", DeviceBrand: "Samsung", DeviceModel: "SMART-TV", DeviceFamily: "Samsung SMART-TV", DeviceType: TypeOther}},
	{"PlayStation 5", "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
		Result{BrowserFamily: "Apple Mail", BrowserVersion: "605.1.15", OSFamily: "Other", DeviceBrand: "Sony", DeviceModel: "PlayStation 5", DeviceFamily: "PlayStation 5", DeviceType: TypeOther}},
	{"empty", "",
		Result{BrowserFamily: "Other", OSFamily: "Other", DeviceFamily: "Other", DeviceType: TypeOther}},
}

func TestParse(t *testing.T) {
	p := sharedParser(t)
	// The second pass is answered by the cache and must agree.
	for _, pass := range []string{"parsed", "cached"} {
		for _, tt := range uaCases {
			t.Run(pass+"/"+tt.name, func(t *testing.T) {
				got := Result{BrowserFamily: "junk", MailProxy: true}
				p.Parse([]byte(tt.ua), &got)
				if got != tt.want {
					t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.ua, got, tt.want)
				}
			})
		}
	}
}

func TestStats(t *testing.T) {
	p, err := New("", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out Result
	uas := []string{uaCases[0].ua, uaCases[1].ua, uaCases[0].ua, uaCases[0].ua, uaCases[2].ua, uaCases[1].ua}
	for _, ua := range uas {
		p.Parse([]byte(ua), &out)
	}
	hits, misses := p.Stats()
	if hits != 3 || misses != 3 {
		t.Fatalf("Stats() = %d hits, %d misses; want 3, 3", hits, misses)
	}
}

// TestParseDoesNotRetainInput parses from a buffer that is then overwritten,
// as the enricher does with Kafka message buffers.
func TestParseDoesNotRetainInput(t *testing.T) {
	p, err := New("", 100)
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte(uaCases[0].ua)
	var out Result
	p.Parse(buf, &out)
	for i := range buf {
		buf[i] = 'x'
	}
	p.Parse([]byte(uaCases[0].ua), &out)
	if out != uaCases[0].want {
		t.Fatalf("cached entry changed with the input buffer: %+v", out)
	}
	if hits, _ := p.Stats(); hits != 1 {
		t.Fatalf("second parse missed the cache (hits %d)", hits)
	}
}

func TestLongUserAgentIsCut(t *testing.T) {
	p, err := New("", 100)
	if err != nil {
		t.Fatal(err)
	}
	base := uaCases[0].ua
	long := base + " " + strings.Repeat("A", MaxUALength) + "tail-one"
	other := base + " " + strings.Repeat("A", MaxUALength) + "tail-two"
	var a, b Result
	p.Parse([]byte(long), &a)
	p.Parse([]byte(other), &b)
	if a.BrowserFamily != "Chrome" || a.DeviceType != TypeDesktop || a != b {
		t.Fatalf("long UA: %+v / %+v", a, b)
	}
	// Both share the first MaxUALength bytes, so the second is a hit on the
	// same bounded key.
	if hits, misses := p.Stats(); hits != 1 || misses != 1 {
		t.Fatalf("hits %d misses %d", hits, misses)
	}
}

func TestCachedParseDoesNotAllocate(t *testing.T) {
	p := sharedParser(t)
	ua := []byte(uaCases[len(uaCases)/2].ua)
	var out Result
	p.Parse(ua, &out)
	if n := testing.AllocsPerRun(100, func() { p.Parse(ua, &out) }); n != 0 {
		t.Fatalf("cached Parse allocates %.1f times", n)
	}
}

// TestConcurrentParse runs parsers against a cache small enough to evict
// constantly; run with -race.
func TestConcurrentParse(t *testing.T) {
	p, err := New("", 16) // one entry per cache shard
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			var out Result
			for i := range 3 * len(uaCases) {
				tt := uaCases[(i+g*7)%len(uaCases)]
				p.Parse([]byte(tt.ua), &out)
				if out != tt.want {
					errs <- tt.name
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("wrong result for %s under concurrency", name)
	}
	hits, misses := p.Stats()
	if hits+misses != 4*3*uint64(len(uaCases)) {
		t.Fatalf("stats %d+%d do not add up", hits, misses)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// A minimal regexes.yaml in uap-core's format.
	custom := write("custom.yaml", `user_agent_parsers:
  - regex: '(PixelProbe)/(\d+)\.(\d+)'
os_parsers:
  - regex: '(ProbeOS) (\d+)'
device_parsers:
  - regex: '(ProbePhone)'
    device_replacement: 'Probe Phone'
    brand_replacement: 'Probe'
    model_replacement: 'P1'
`)
	badRegex := write("bad.yaml", `user_agent_parsers:
  - regex: '(unclosed'
os_parsers:
  - regex: '(X)'
device_parsers:
  - regex: '(Y)'
`)
	wrongShape := write("wrong.yaml", "foo: bar\n")
	notYAML := write("notyaml.yaml", "user_agent_parsers: [\n")

	for _, tt := range []struct {
		name  string
		path  string
		size  int
		valid bool
	}{
		{"embedded regexes", "", 10, true},
		{"custom regexes", custom, 0, true},
		{"negative cache size", "", -1, false},
		{"missing file", filepath.Join(dir, "missing.yaml"), 0, false},
		{"invalid regex", badRegex, 0, false},
		{"yaml of another shape", wrongShape, 0, false},
		{"not yaml", notYAML, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.path, tt.size)
			if (err == nil) != tt.valid {
				t.Fatalf("New(%q, %d) error = %v, want valid %v", tt.path, tt.size, err, tt.valid)
			}
			if p == nil && tt.valid {
				t.Fatal("nil parser")
			}
		})
	}

	p, err := New(custom, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out Result
	p.Parse([]byte("PixelProbe/3.4 (ProbeOS 7; ProbePhone)"), &out)
	want := Result{BrowserFamily: "PixelProbe", BrowserVersion: "3.4", OSFamily: "ProbeOS", OSVersion: "7",
		DeviceBrand: "Probe", DeviceModel: "P1", DeviceFamily: "Probe Phone", DeviceType: TypeOther}
	if out != want {
		t.Fatalf("custom regexes:\n got %+v\nwant %+v", out, want)
	}
}

func TestJoinVersion(t *testing.T) {
	for _, tt := range []struct {
		parts []string
		want  string
	}{
		{nil, ""},
		{[]string{"", "1"}, ""},
		{[]string{"17"}, "17"},
		{[]string{"17", "6", ""}, "17.6"},
		{[]string{"17", "", "1"}, "17"},
		{[]string{"10", "15", "7", "1"}, "10.15.7.1"},
	} {
		if got := joinVersion(tt.parts...); got != tt.want {
			t.Errorf("joinVersion(%q) = %q, want %q", tt.parts, got, tt.want)
		}
	}
}

// FuzzParse feeds arbitrary headers through the cache and ua-parser: no
// panics, a known device type, and the cached answer equals the first.
func FuzzParse(f *testing.F) {
	for _, tt := range uaCases {
		f.Add([]byte(tt.ua))
	}
	f.Add([]byte("Mozilla/5.0 (\xff\xfe; Android; Mobile"))
	f.Add(bytes.Repeat([]byte("Mozilla/5.0 "), 200))
	p, err := New("", 1024)
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{TypeDesktop: true, TypeMobile: true, TypeTablet: true, TypeBot: true, TypeOther: true}
	f.Fuzz(func(t *testing.T, ua []byte) {
		var first, second Result
		p.Parse(ua, &first)
		if !valid[first.DeviceType] {
			t.Fatalf("device type %q", first.DeviceType)
		}
		if first.BrowserFamily == "" || first.OSFamily == "" || first.DeviceFamily == "" {
			t.Fatalf("empty family: %+v", first)
		}
		if first.MailProxy && first.DeviceType != TypeOther {
			t.Fatalf("mail proxy classified %q", first.DeviceType)
		}
		p.Parse(ua, &second)
		if first != second {
			t.Fatalf("cached result differs:\n%+v\n%+v", first, second)
		}
	})
}

func BenchmarkParseCached(b *testing.B) {
	p := sharedParser(b)
	uas := make([][]byte, len(uaCases))
	var out Result
	for i, tt := range uaCases {
		uas[i] = []byte(tt.ua)
		p.Parse(uas[i], &out)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Parse(uas[i%len(uas)], &out)
		i++
	}
}

func BenchmarkParseCachedParallel(b *testing.B) {
	p := sharedParser(b)
	uas := make([][]byte, len(uaCases))
	var warm Result
	for i, tt := range uaCases {
		uas[i] = []byte(tt.ua)
		p.Parse(uas[i], &warm)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var out Result
		i := 0
		for pb.Next() {
			p.Parse(uas[i%len(uas)], &out)
			i++
		}
	})
}

// BenchmarkParseUncached makes every call a miss: each User-Agent is a real
// one with a unique build number appended, the shape of the long tail.
func BenchmarkParseUncached(b *testing.B) {
	p, err := New("", 0)
	if err != nil {
		b.Fatal(err)
	}
	var out Result
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tt := uaCases[i%len(uaCases)]
		buf = strconv.AppendInt(append(append(buf[:0], tt.ua...), " build/"...), int64(i), 10)
		p.Parse(buf, &out)
		i++
	}
	b.StopTimer()
	if hits, _ := p.Stats(); hits != 0 {
		b.Fatalf("uncached benchmark hit the cache %d times", hits)
	}
}
