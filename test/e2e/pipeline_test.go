// Package e2e runs the real edge and enricher binaries against a real Kafka
// broker (KAFKA_BROKERS, started by `make test`), fires pixel hits over HTTP
// and checks what lands on the enriched topic with an independent client
// (kcat).
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
	"github.com/pixelstream/pixelstream/pkg/pageview"
)

var gif43 = "GIF89a"

// uaCase is a real User-Agent and what the enricher must make of it.
type uaCase struct {
	ua, browser, os, device string
}

var userAgents = []uaCase{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "mobile"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "Mac OS X", "desktop"},
	{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.104 Mobile Safari/537.36", "Chrome Mobile", "Android", "mobile"},
	{"Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "tablet"},
	{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "Other", "bot"},
}

// ipCase is a client address sent through the trusted proxy, with the
// country the real GeoLite2 database gives it ("" when not checked).
type ipCase struct{ ip, country string }

var clientIPs = []ipCase{
	{"81.2.69.142", "GB"}, {"83.208.93.244", "CZ"}, {"8.8.8.8", "US"}, {"1.1.1.1", "AU"},
	{"2001:db8::7", ""}, {"198.51.100.23", ""},
}

type clickCase struct{ param, value, platform string }

var clicks = []clickCase{
	{"gclid", "Cj0KCQiA_e2e", "google_ads"},
	{"fbclid", "IwAR3xMixedCase_e2e", "meta"},
	{"msclkid", "5f2b1c0e2e", "microsoft_ads"},
	{"ttclid", "E.C.P.e2e", "tiktok"},
	{"li_fat_id", "1b7e2e", "linkedin"},
}

// sent is what the test expects to find for one accepted hit.
type sent struct {
	i       int
	project string
	ip      ipCase
	ua      uaCase
	click   clickCase
	utm     string
	dnt     bool
	pre     bool
}

func TestPipelineEndToEnd(t *testing.T) {
	kafkatest.Integration(t)
	raw, enriched, dead := kafkatest.UniqueTopic(t, "hits.raw"), kafkatest.UniqueTopic(t, "pageviews.enriched"), kafkatest.UniqueTopic(t, "hits.deadletter")
	brokers := kafkatest.Brokers(t, raw, enriched, dead)
	bs := strings.Join(brokers, ",")

	dir := t.TempDir()
	projectsFile := filepath.Join(dir, "projects.yaml")
	if err := os.WriteFile(projectsFile, []byte(`projects:
  - id: proj-alpha
    key: k-alpha
    ip_mode: full
  - id: proj-beta
    keys: [k-beta]
    allowed_hosts: [shop.example, "*.shop.example"]
    privacy_signals: honour
`), 0o644); err != nil {
		t.Fatal(err)
	}
	geoDB := os.Getenv("GEOIP_CITY_DB")
	topics := []string{"KAFKA_BROKERS=" + bs, "RAW_TOPIC=" + raw, "ENRICHED_TOPIC=" + enriched, "DEADLETTER_TOPIC=" + dead}

	enrAdmin := freeAddr(t)
	enr := startProc(t, "enricher", bins.enricher, append(topics,
		"ENRICHER_ADMIN_ADDR="+enrAdmin, "ENRICHER_GROUP_ID=e2e-"+raw, "ENRICHER_GEOIP_CITY="+geoDB,
		"ENRICHER_GROUP_SESSION_TIMEOUT=6s")...)
	edgeAddr, edgeAdmin := freeAddr(t), freeAddr(t)
	edge := startProc(t, "edge", bins.edge, append(topics,
		"EDGE_ADDR="+edgeAddr, "EDGE_ADMIN_ADDR="+edgeAdmin, "EDGE_PROJECTS_FILE="+projectsFile,
		"EDGE_TRUSTED_PROXIES=127.0.0.0/8", "EDGE_INSTANCE=e2e-edge", "EDGE_DRAIN_DELAY=0s", "EDGE_SPOOL_DIR="+t.TempDir())...)
	waitReady(t, enr, "http://"+enrAdmin+"/healthz", 30*time.Second)
	waitReady(t, edge, "http://"+edgeAdmin+"/readyz", 30*time.Second)

	client := &http.Client{Timeout: 10 * time.Second}
	fire := func(method, query string, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+edgeAddr+"/api/v1/pixel?"+query, nil)
		req.Host = "t.shop.example"
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, body
	}

	const accepted = 300
	want := map[string]sent{} // page path -> expectation
	withheld := 0
	for i := range accepted {
		s := sent{i: i, ip: clientIPs[i%len(clientIPs)], ua: userAgents[i%len(userAgents)], click: clicks[i%len(clicks)],
			utm: "src" + strconv.Itoa(i%4), dnt: i%5 == 0, pre: i%25 == 0}
		key := "k-alpha"
		s.project = "proj-alpha"
		if i%2 == 1 {
			key, s.project = "k-beta", "proj-beta"
		}
		page := fmt.Sprintf("https://www.shop.example/p/%d?utm_source=%s&utm_medium=cpc&utm_campaign=bf", i, s.utm)
		q := url.Values{"key": {key}, "ref": {"https://www.google.com/"}}
		if i%3 == 0 {
			// Click ID passed as the pixel's own parameter.
			q.Set(s.click.param, s.click.value)
		} else {
			page += "&" + s.click.param + "=" + url.QueryEscape(s.click.value)
		}
		q.Set("url", page)
		hdr := map[string]string{"User-Agent": s.ua.ua, "X-Forwarded-For": "203.0.113.250, " + s.ip.ip}
		if s.dnt {
			hdr["DNT"] = "1"
		}
		if s.pre {
			hdr["Sec-Purpose"] = "prefetch"
		}
		resp, body := fire("GET", q.Encode(), hdr)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || len(body) != 43 || !strings.HasPrefix(string(body), gif43) {
			t.Fatalf("hit %d: %d %s %d bytes", i, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if s.project == "proj-beta" && s.dnt {
			withheld++ // proj-beta honours DNT: counted, never published
			continue
		}
		want[fmt.Sprintf("/p/%d", i)] = s
	}
	arriving := accepted - withheld

	// Rejected hits get the GIF with a status that says why, and never arrive.
	rejected := []struct {
		query  string
		status int
	}{
		{"url=" + url.QueryEscape("https://shop.example/r/1"), 400},
		{"key=nope&url=" + url.QueryEscape("https://shop.example/r/2"), 403},
		{"key=k-beta&url=" + url.QueryEscape("https://evil.example/r/3"), 403},
	}
	for n := range 60 {
		r := rejected[n%len(rejected)]
		resp, body := fire("GET", r.query, map[string]string{"User-Agent": userAgents[0].ua})
		if resp.StatusCode != r.status || len(body) != 43 || resp.Header.Get("X-Pixelstream-Error") == "" {
			t.Fatalf("rejected hit %q: %d, %d bytes, reason %q", r.query, resp.StatusCode, len(body), resp.Header.Get("X-Pixelstream-Error"))
		}
	}
	for n := range 10 { // HEAD is answered but not recorded
		resp, body := fire("HEAD", "key=k-alpha&url="+url.QueryEscape(fmt.Sprintf("https://shop.example/h/%d", n)), nil)
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "43" {
			t.Fatalf("HEAD: %d, %d bytes, Content-Length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
		}
	}

	// Read with kcat, an independent client, until every accepted hit is there.
	var values [][]byte
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		values = kafkatest.Kcat(t, brokers, enriched, 30*time.Second)
		if len(values) >= arriving {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything extra (a rejected hit) would show up now
	values = kafkatest.Kcat(t, brokers, enriched, 30*time.Second)

	ids := map[string]bool{}
	found := map[string]bool{}
	for _, v := range values {
		var pv pageview.Pageview
		if err := json.Unmarshal(v, &pv); err != nil {
			t.Fatalf("not JSON: %v: %s", err, v)
		}
		if ids[pv.EventID] {
			t.Errorf("duplicate event_id %s", pv.EventID)
		}
		ids[pv.EventID] = true
		s, ok := want[pv.PagePath]
		if !ok {
			t.Errorf("unexpected record (rejected or HEAD hit published?): page %s", pv.PageURL)
			continue
		}
		found[pv.PagePath] = true
		checkRecord(t, s, &pv, geoDB != "")
	}
	if len(found) != arriving {
		t.Errorf("%d of %d accepted and published hits arrived", len(found), arriving)
	}
	if dls := kafkatest.ReadAll(t, brokers, dead, 0, 5*time.Second); len(dls) != 0 {
		t.Errorf("%d records dead-lettered, want 0", len(dls))
	}
	t.Logf("e2e: %d accepted hits sent, %d withheld for DNT by project policy, %d arrived (read with kcat), %d rejected and 10 HEAD not published; geo checked: %v",
		accepted, withheld, len(found), 60, geoDB != "")

	// Shut down in order: the edge drains, then the enricher.
	edge.Stop(t, 30*time.Second)
	enr.Stop(t, 40*time.Second)
}

// truncated is the address as the enricher's default IP policy writes it.
func truncated(ip string) string {
	a := netip.MustParseAddr(ip)
	bits := 48
	if a.Is4() {
		bits = 24
	}
	return netip.PrefixFrom(a, bits).Masked().Addr().String()
}

func checkRecord(t *testing.T, s sent, pv *pageview.Pageview, geo bool) {
	t.Helper()
	errs := []string{}
	check := func(field, got, want string) {
		if got != want {
			errs = append(errs, fmt.Sprintf("%s=%q want %q", field, got, want))
		}
	}
	id, err := hit.ParseEventID(pv.EventID)
	if err != nil || id[6]>>4 != 7 {
		errs = append(errs, "event_id not a UUIDv7: "+pv.EventID)
	}
	if ts, err := time.Parse(time.RFC3339Nano, pv.ReceivedAt); err != nil || time.Since(ts) > 5*time.Minute {
		errs = append(errs, "received_at wrong: "+pv.ReceivedAt)
	}
	check("project_id", pv.ProjectID, s.project)
	if s.project == "proj-alpha" {
		check("ip", pv.IP, s.ip.ip)
		check("ip_mode", pv.IPMode, "full")
	} else {
		check("ip", pv.IP, truncated(s.ip.ip))
		check("ip_mode", pv.IPMode, "truncate")
	}
	if len(pv.VisitorID) != 32 || pv.SessionID == "" || pv.SessionSeq < 1 {
		errs = append(errs, fmt.Sprintf("visitor/session missing: %q %q %d", pv.VisitorID, pv.SessionID, pv.SessionSeq))
	}
	check("event_type", pv.EventType, "pageview")
	check("page_host", pv.PageHost, "www.shop.example")
	check("referrer_host", pv.ReferrerHost, "www.google.com")
	check("utm_source", pv.UTMSource, s.utm)
	check("utm_medium", pv.UTMMedium, "cpc")
	check("utm_campaign", pv.UTMCampaign, "bf")
	check("click_id", pv.ClickID, s.click.value)
	check("click_id_param", pv.ClickIDParam, s.click.param)
	check("click_platform", pv.ClickPlatform, s.click.platform)
	check("browser_family", pv.BrowserFamily, s.ua.browser)
	check("os_family", pv.OSFamily, s.ua.os)
	check("device_type", pv.DeviceType, s.ua.device)
	check("user_agent", pv.UserAgent, s.ua.ua)
	check("tracking_host", pv.TrackingHost, "t.shop.example")
	check("edge_instance", pv.EdgeInstance, "e2e-edge")
	if geo && s.ip.country != "" {
		check("geo_country_code", pv.GeoCountryCode, s.ip.country)
	}
	if pv.DNT != s.dnt || pv.Prefetch != s.pre {
		errs = append(errs, fmt.Sprintf("dnt=%v prefetch=%v want %v %v", pv.DNT, pv.Prefetch, s.dnt, s.pre))
	}
	found := false
	for _, kv := range pv.ClickIDs {
		if kv.Key == s.click.param && kv.Value == s.click.value {
			found = true
		}
	}
	if !found {
		errs = append(errs, fmt.Sprintf("click_ids %v lacks %s", pv.ClickIDs, s.click.param))
	}
	if len(errs) > 0 {
		t.Errorf("hit %d (%s): %s", s.i, pv.PageURL, strings.Join(errs, "; "))
	}
}
