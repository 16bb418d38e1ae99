package pixel

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// readRequest parses raw as the server would, or reports false when
// fasthttp refuses it.
func readRequest(raw string) (*fasthttp.Request, bool) {
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		return nil, false
	}
	return req, true
}

// checkTarget fails t if target accepts req with a path, query or host other
// than fasthttp's own parse of the same request.
func checkTarget(t *testing.T, req *fasthttp.Request) (ok bool) {
	t.Helper()
	query, host, ok := target(&req.Header)
	if !ok {
		return false
	}
	// fasthttp parses the URI on this first call, from the same bytes.
	u := req.URI()
	if string(u.Path()) != Path || string(u.QueryString()) != string(query) || string(u.Host()) != string(host) {
		t.Fatalf("request target %q, Host %q: target gave query %q host %q; fasthttp: path %q query %q host %q",
			req.Header.RequestURI(), req.Header.Host(), query, host, u.Path(), u.QueryString(), u.Host())
	}
	return true
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		name, uri, host string
		fast            bool // target reads it itself
		wantQuery       string
		wantHost        string
		pixel           bool // the handler routes it to the pixel (not 404)
	}{
		{"pixel with query", "/api/v1/pixel?key=k&url=https%3A%2F%2Fshop.example%2F", "t.example", true, "key=k&url=https%3A%2F%2Fshop.example%2F", "t.example", true},
		{"port", "/api/v1/pixel?key=k", "t.example:8080", true, "key=k", "t.example:8080", true},
		{"no query", "/api/v1/pixel", "t-1.example", true, "", "t-1.example", true},
		{"empty query", "/api/v1/pixel?", "t", true, "", "t", true},
		{"fragment after query", "/api/v1/pixel?key=k#x?y", "t", true, "key=k", "t", true},
		{"fragment, no query", "/api/v1/pixel#x?key=k", "t", true, "", "t", true},
		{"upper-case host", "/api/v1/pixel?key=k", "T.Example", false, "key=k", "t.example", true},
		{"IPv6 host", "/api/v1/pixel?key=k", "[2001:db8::1]:8080", false, "key=k", "[2001:db8::1]:8080", true},
		// fasthttp refuses the host, and the URI with it: not found, as before.
		{"escaped host", "/api/v1/pixel?key=k", "t%2eexample", false, "", "", false},
		{"double slash", "/api/v1//pixel?key=k", "t", false, "key=k", "t", true},
		{"escaped path", "/api/v1/%70ixel?key=k", "t", false, "key=k", "t", true},
		{"dot segment", "/api/v1/x/../pixel?key=k", "t", false, "key=k", "t", true},
		{"absolute form", "http://other.example/api/v1/pixel?key=k", "t", false, "key=k", "other.example", true},
		{"longer path", "/api/v1/pixels?key=k", "t", false, "key=k", "t", false},
		{"trailing slash", "/api/v1/pixel/?key=k", "t", false, "key=k", "t", false},
		{"other path", "/favicon.ico", "t", false, "", "t", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, ok := readRequest("GET " + tc.uri + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n")
			if !ok {
				t.Fatal("fasthttp refused the request")
			}
			if got := checkTarget(t, req); got != tc.fast {
				t.Fatalf("target ok = %v, want %v", got, tc.fast)
			}
			// The handler's own choice between target and fasthttp.
			q := &memQueue{}
			h, _ := newHandler(t, q)
			raw := "GET " + strings.Replace(tc.uri, "key=k", "key=open-key", 1) + " HTTP/1.1\r\nHost: " + tc.host + "\r\n\r\n"
			ctx := serve(t, h, raw, "198.51.100.1:1")
			if tc.pixel != (ctx.Response.StatusCode() != fasthttp.StatusNotFound) {
				t.Fatalf("status %d, want routed to the pixel: %v", ctx.Response.StatusCode(), tc.pixel)
			}
			recs := q.all()
			if !tc.pixel || tc.wantQuery == "" {
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			wantQuery := strings.Replace(tc.wantQuery, "key=k", "key=open-key", 1)
			if string(recs[0].Query) != wantQuery || string(recs[0].Host) != tc.wantHost {
				t.Fatalf("record query %q host %q, want %q %q", recs[0].Query, recs[0].Host, wantQuery, tc.wantHost)
			}
		})
	}
}

// FuzzTarget feeds request lines and Host headers to fasthttp's parser and
// checks that whatever target reads itself is what fasthttp's URI says.
func FuzzTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"/api/v1/pixel?key=k", "t.example"},
		{"/api/v1/pixel#f?key=k", "t.example:80"},
		{"/api/v1/pixel?key=k#f", "t:"},
		{"/api/v1/pixel?key=%00", "a..b"},
		{"/api/v1/pixel", "-.-:65536"},
		{"/api/v1/pixel?a", ":80"},
		{"/api/v1/pixel\t?a", "t"},
		{"/api/v1/pixel?a b", "t"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, uri, host string) {
		req, ok := readRequest("GET " + uri + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
		if !ok {
			return
		}
		checkTarget(t, req)
	})
}
