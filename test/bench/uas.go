package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The User-Agent corpus of the realistic mix.
//
// The head is ~200 real User-Agent strings in the exact formats browsers,
// in-app browsers and bots send (late 2024 / 2025 versions, after Chrome's
// User-Agent reduction froze the platform to "Windows NT 10.0; Win64; x64",
// "Macintosh; Intel Mac OS X 10_15_7" and "Linux; Android 10; K"). Each
// family has a weight (its rough share of pixel traffic on a general
// Western site) and its versions are listed newest-and-most-common first;
// a version's score is weight × 0.72^index, and the head is ranked by
// score. The mix then draws ranks from a Zipf law over that ranking, so
// the ranking decides which strings are common, not their exact share.
//
// The tail (rareUA) builds strings that are real in shape but rare or
// unique: in-app browsers that append app build numbers and device models
// (Facebook, Instagram, TikTok, LinkedIn on iOS and Android WebViews),
// Android devices that still send their model, old desktop browsers.

type uaFamily struct {
	weight   float64
	versions []string
}

func expand(format string, args ...[]any) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, fmt.Sprintf(format, a...))
	}
	return out
}

func ints(from, to int) [][]any {
	var out [][]any
	for v := from; v >= to; v-- {
		out = append(out, []any{v})
	}
	return out
}

func pairs(vs ...string) [][]any {
	var out [][]any
	for _, v := range vs {
		a := []any{}
		for _, p := range strings.Split(v, "|") {
			a = append(a, p)
		}
		out = append(out, a)
	}
	return out
}

func uaFamilies() []uaFamily {
	return []uaFamily{
		{30, expand("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", ints(131, 116)...)},
		{22, expand("Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%s Mobile/15E148 Safari/604.1",
			pairs("18_1_1|18.1.1", "18_1|18.1", "17_6_1|17.6.1", "18_0_1|18.0.1", "18_2|18.2", "17_5_1|17.5", "16_7_10|16.6.1", "17_7|17.7",
				"18_0|18.0", "17_4_1|17.4.1", "15_8_3|15.6.6", "16_6_1|16.6.1", "17_3_1|17.3.1", "16_3_1|16.3")...)},
		{18, expand("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36", ints(131, 112)...)},
		{10, expand("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", ints(131, 115)...)},
		{8, expand("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.0.0 Safari/537.36 Edg/%s",
			pairs("131|131.0.0.0", "130|130.0.0.0", "131|131.0.2903.86", "129|129.0.0.0", "128|128.0.0.0", "127|127.0.0.0", "126|126.0.0.0", "122|122.0.0.0", "120|120.0.0.0", "109|109.0.1518.140")...)},
		{6, expand("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%s Safari/605.1.15",
			pairs("18.1.1", "18.1", "17.6", "18.0.1", "18.2", "17.5", "17.4.1", "16.6", "17.1", "16.5.2", "15.6.1")...)},
		{5, expand("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0", func() [][]any {
			var o [][]any
			for _, v := range []int{133, 132, 128, 131, 115, 130, 129, 127, 126, 125, 124, 123, 122, 121} {
				o = append(o, []any{v, v})
			}
			return o
		}()...)},
		{4, expand("Mozilla/5.0 (Linux; Android %s; SAMSUNG %s) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/%s Chrome/%s.0.0.0 Mobile Safari/537.36",
			pairs("14|SM-S918B|27.0|125", "14|SM-A546B|26.0|122", "13|SM-A536B|25.0|121", "14|SM-S921B|27.0|125", "13|SM-G991B|25.0|121",
				"14|SM-A556B|26.0|122", "12|SM-A525F|23.0|115", "14|SM-S911B|27.0|125", "13|SM-A135F|24.0|117", "14|SM-G998B|26.0|122")...)},
		{3, expand("Mozilla/5.0 (iPad; CPU OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%s Mobile/15E148 Safari/604.1",
			pairs("18_1|18.1", "17_6_1|17.6.1", "16_7_10|16.6.1", "18_0_1|18.0.1", "15_8_3|15.6.6", "17_5_1|17.5")...)},
		{2, expand("Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/%s Mobile/15E148 Safari/604.1",
			pairs("18_1|131.0.6778.73", "17_6_1|131.0.6778.73", "18_1|130.0.6723.90", "17_7|131.0.6778.103", "16_7_10|129.0.6668.69", "18_0_1|130.0.6723.78")...)},
		{1.5, expand("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", ints(131, 124)...)},
		{1.5, expand("Mozilla/5.0 (Macintosh; Intel Mac OS X %s; rv:%s.0) Gecko/20100101 Firefox/%s.0",
			pairs("10.15|133|133", "10.15|132|132", "10.15|128|128", "14.7|131|131", "10.15|115|115", "13.6|130|130")...)},
		{1.5, expand("Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/%s %s",
			pairs("18_1|22B83|[FBAN/FBIOS;FBAV/491.0.0.42.107;FBBV/663542587;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/18.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/665227262]",
				"17_6_1|21G93|Instagram 356.0.0.26.84 (iPhone14,5; iOS 17_6_1; en_US; en; scale=3.00; 1170x2532; 656316331)",
				"18_1|22B83|Instagram 357.1.0.25.101 (iPhone16,2; iOS 18_1; en_GB; en-GB; scale=3.00; 1290x2796; 660224586)",
				"18_0_1|22A3370|LinkedInApp/9.30.1853 (iPhone; iOS 18.0.1; Scale/3.00)")...)},
		{1, expand("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", [][]any{{133, 133}, {132, 132}, {128, 128}, {115, 115}}...)},
		{1, expand("Mozilla/5.0 (Android %s; Mobile; rv:%s.0) Gecko/%s.0 Firefox/%s.0", pairs("14|133|133|133", "13|132|132|132", "14|128|128|128", "12|131|131|131")...)},
		{1, expand("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.0.0 Safari/537.36 OPR/%s.0.0.0",
			pairs("130|115", "129|114", "128|113", "126|112")...)},
		{1, expand("Mozilla/5.0 (Linux; Android %s; %s Build/%s; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s Mobile Safari/537.36",
			pairs("14|Pixel 8|AP2A.240905.003|131.0.6778.81", "13|Pixel 7|TQ3A.230805.001|130.0.6723.107", "14|SM-S918B|UP1A.231005.007|131.0.6778.39", "13|SM-A536B|TP1A.220624.014|129.0.6668.100")...)},
		{0.8, expand("Mozilla/5.0 (Windows NT %s; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", pairs("6.1", "6.3", "10.0; WOW64")...)},
		{0.6, expand("Mozilla/5.0 (X11; CrOS x86_64 %s) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.0.0 Safari/537.36", pairs("14541.0.0|131", "14541.0.0|130", "15917.71.0|129")...)},
		{0.5, expand("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.0.0 YaBrowser/%s Yowser/2.5 Safari/537.36",
			pairs("128|24.10.0.0", "126|24.7.0.0")...)},
		{0.5, expand("Mozilla/5.0 (Linux; U; Android %s; en-US; %s Build/%s) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s UCBrowser/13.4.0.1306 Mobile Safari/537.36",
			pairs("11|RMX2193|RP1A.200720.011|100.0.4896.58", "10|CPH2185|QP1A.190711.020|78.0.3904.108")...)},
		// Bots and tools that load pixels: crawlers rendering pages, link
		// previews, monitors, scripts.
		{2.5, []string{
			"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/131.0.0.0 Safari/537.36",
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36",
			"Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
			"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
			"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
			"Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
			"Twitterbot/1.0",
			"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
			"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
			"curl/8.5.0",
			"python-requests/2.32.3",
			"Go-http-client/1.1",
			"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
			"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
			"Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
			"Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
		}},
	}
}

// headUAs returns the ranked head of the corpus (rank 0 is the most common).
func headUAs() []string {
	type scored struct {
		ua    string
		score float64
	}
	var all []scored
	seen := map[string]bool{}
	for _, f := range uaFamilies() {
		for i, v := range f.versions {
			if seen[v] {
				continue
			}
			seen[v] = true
			all = append(all, scored{v, f.weight * math.Pow(0.72, float64(i))})
		}
	}
	slices.SortStableFunc(all, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.ua
	}
	return out
}

// emailUAs are the fetchers of email-open pixels with their shares: Gmail's
// image proxy, Apple Mail (Privacy Protection relays and the app itself),
// Yahoo's proxy, Outlook desktop, and webmail read in a browser.
var emailUAs = []struct {
	ua     string
	share  float64
	ipKind int // ipGoogle, ipApple, ipYahoo, ipAny
}{
	{"Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", 0.42, ipGoogle},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", 0.22, ipApple},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", 0.10, ipApple},
	{"Mozilla/5.0", 0.04, ipApple},
	{"YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", 0.06, ipYahoo},
	{"Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", 0.05, ipAny},
	{"Mozilla/4.0 (compatible; ms-office; MSOffice 16)", 0.03, ipAny},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 0.04, ipAny},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 0.04, ipAny},
}

// Pieces the tail is built from.
var (
	tailAndroidModels = []string{
		"SM-A155F", "SM-A256B", "SM-A346B", "SM-A057F", "SM-M146B", "SM-G780G", "SM-A715F", "SM-N986B", "SM-F946B", "SM-X200",
		"Redmi Note 13 Pro", "2201117TG", "23129RAA4G", "M2101K6G", "22111317G", "2312DRAABG", "Redmi 12C", "POCO X6 Pro 5G",
		"CPH2591", "CPH2381", "RMX3710", "RMX3630", "V2250", "V2111", "moto g54 5G", "moto e13", "motorola edge 40",
		"Pixel 6a", "Pixel 7a", "Pixel 8 Pro", "Pixel 9", "ONEPLUS A6013", "CPH2449", "NE2213", "LE2123", "TECNO KI5q",
		"Infinix X6833B", "itel A665L", "ELE-L29", "VOG-L29", "ANE-LX1", "STK-LX1", "HMA-L29", "Nokia G21", "TA-1021",
		"Lenovo TB-X606F", "SM-T505", "KFTRWI", "A142", "SO-51B", "XQ-CT54", "ASUS_I006D", "NX729J", "Mi 9T Pro", "Mi A3",
	}
	tailAndroidBuilds = []string{"UP1A.231005.007", "TP1A.220624.014", "SP1A.210812.016", "AP2A.240905.003", "RKQ1.211119.001",
		"QP1A.190711.020", "TKQ1.221114.001", "UKQ1.230804.001", "S3RWBS32.151-29-2-5", "PPR1.180610.011"}
	tailIOS     = []string{"18_1_1", "18_1", "18_0_1", "17_6_1", "17_7", "17_5_1", "16_7_10", "18_2", "17_4_1", "15_8_3"}
	tailIPh     = []string{"iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone14,7", "iPhone15,2", "iPhone15,3", "iPhone15,4", "iPhone16,1", "iPhone16,2", "iPhone17,1", "iPhone11,8", "iPhone12,8"}
	tailLocales = []string{"en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL", "sv_SE", "en_AU", "en_CA"}
)

// rareUA builds tail User-Agent number n: a deterministic function of n,
// so equal n give equal strings (the rare pool) and fresh n give strings
// never seen before (one-offs). The app build numbers make them distinct.
func rareUA(n uint64) string {
	r := splitmix(n)
	pick := func(s []string) string { r = splitmix(r); return s[r%uint64(len(s))] }
	num := func(lo, hi uint64) uint64 { r = splitmix(r); return lo + r%(hi-lo+1) }
	chrome := fmt.Sprintf("%d.0.%d.%d", num(118, 131), num(5993, 6778), num(50, 205))
	switch n % 7 {
	case 0: // Facebook in-app on Android
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; %s Build/%s; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/%d.0.0.%d.%d;]",
			num(10, 15), pick(tailAndroidModels), pick(tailAndroidBuilds), chrome, num(440, 492), num(10, 60), num(10, 120))
	case 1: // Facebook in-app on iOS
		v := pick(tailIOS)
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/%s [FBAN/FBIOS;FBAV/%d.0.0.%d.%d;FBBV/%d;FBDV/%s;FBMD/iPhone;FBSN/iOS;FBSV/%s;FBSS/3;FBID/phone;FBLC/%s;FBOP/5;FBRV/%d]",
			v, "22B83", num(440, 492), num(10, 60), num(10, 120), num(600000000, 669999999), pick(tailIPh), strings.ReplaceAll(v, "_", "."), pick(tailLocales), num(600000000, 669999999))
	case 2: // Instagram on Android
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; %s Build/%s; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s Mobile Safari/537.36 Instagram %d.0.0.%d.%d Android (%d/%d; %ddpi; %dx%d; %s; %s; %s; qcom; %s; %d)",
			num(11, 15), pick(tailAndroidModels), pick(tailAndroidBuilds), chrome, num(320, 357), num(10, 50), num(60, 120), num(30, 35), num(11, 15),
			[]uint64{420, 440, 480, 560}[num(0, 3)], num(1080, 1440), num(2340, 3200), "samsung", pick(tailAndroidModels), "qcom", pick(tailLocales), num(500000000, 660000000))
	case 3: // Instagram on iOS
		v := pick(tailIOS)
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/21G93 Instagram %d.0.0.%d.%d (%s; iOS %s; %s; en; scale=3.00; %dx%d; %d)",
			v, num(320, 357), num(10, 50), num(60, 120), pick(tailIPh), v, pick(tailLocales), num(1170, 1290), num(2532, 2796), num(500000000, 660000000))
	case 4: // Chrome on an Android device that still sends its model (WebView apps, older Chrome)
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; %s Build/%s; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s Mobile Safari/537.36",
			num(9, 15), pick(tailAndroidModels), pick(tailAndroidBuilds), chrome)
	case 5: // TikTok in-app
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; %s Build/%s; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/%s Mobile Safari/537.36 trill_%d JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/%d.%d.%d ByteLocale/%s Region/%s",
			num(10, 15), pick(tailAndroidModels), pick(tailAndroidBuilds), chrome, num(350000, 370999), num(33, 37), num(0, 9), num(1, 5), pick(tailLocales), "GB")
	default: // an old or unusual desktop browser
		return fmt.Sprintf("Mozilla/5.0 (Windows NT %s; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.%d Safari/537.36",
			[]string{"10.0", "6.1", "6.3"}[num(0, 2)], num(70, 115), num(3000, 5800), num(1, 200))
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
