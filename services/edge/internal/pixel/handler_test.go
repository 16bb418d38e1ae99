package pixel

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/goleak"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
	"github.com/pixelstream/pixelstream/services/edge/internal/projects"
	"github.com/pixelstream/pixelstream/services/edge/internal/publish"
	"github.com/pixelstream/pixelstream/services/edge/internal/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header ticker never stops, and a
		// stopped server's worker-pool cleaner notices the stop only after
		// its current sleep (MaxIdleWorkerDuration, 10 s).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

// memQueue keeps deep copies of published records.
type memQueue struct {
	mu      sync.Mutex
	records []*hit.Raw
	full    bool
}

func (q *memQueue) NewRecord() *hit.Raw { return new(hit.Raw) }

func (q *memQueue) Publish(r *hit.Raw) bool {
	if q.full {
		return false
	}
	var c hit.Raw
	if err := c.Unmarshal(r.AppendProto(nil)); err != nil {
		panic(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.records = append(q.records, &c)
	return true
}

func (q *memQueue) all() []*hit.Raw {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*hit.Raw(nil), q.records...)
}

func testKeys(t testing.TB) *projects.Set {
	t.Helper()
	set, err := projects.Build([]projects.Spec{
		{ID: "shop", Keys: []string{"shop-key"}, AllowedHosts: []string{"shop.example.com", "*.shop.example.org"}},
		{ID: "open", Key: "open-key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func newHandler(t testing.TB, q Queue, trusted ...string) (*Handler, *prometheus.Registry) {
	t.Helper()
	prefixes, err := clientip.ParsePrefixes(trusted)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	h, err := New(Config{Keys: testKeys(t), ClientIP: clientip.New(prefixes), Queue: q, Instance: "edge-test-1", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

// serve runs h on a RequestCtx parsed from a raw HTTP request, as the
// server would, from the given peer address.
func serve(t testing.TB, h *Handler, raw string, peer string) *fasthttp.RequestCtx {
	t.Helper()
	ctx := new(fasthttp.RequestCtx)
	addr, err := net.ResolveTCPAddr("tcp", peer)
	if err != nil {
		t.Fatal(err)
	}
	ctx.Init(new(fasthttp.Request), addr, nil)
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	h.Handle(ctx)
	return ctx
}

const fullRequest = "GET /api/v1/pixel?key=shop-key&url=https%3A%2F%2Fshop.example.com%2Fp%2F1&utm_source=mail&cb=123 HTTP/1.1\r\n" +
	"Host: track.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0\r\n" +
	"Referer: https://shop.example.com/\r\n" +
	"Accept-Language: de-DE,de;q=0.9\r\n" +
	"DNT: 1\r\n" +
	"Sec-GPC: 1\r\n" +
	"Sec-Purpose: prefetch;prerender\r\n" +
	"Sec-CH-UA: \"Chromium\";v=\"131\"\r\n" +
	"Sec-CH-UA-Mobile: ?0\r\n" +
	"Sec-CH-UA-Platform: \"Linux\"\r\n" +
	"Sec-CH-UA-Platform-Version: \"6.1\"\r\n" +
	"Sec-CH-UA-Model: \"\"\r\n" +
	"Sec-CH-UA-Full-Version-List: \"Chromium\";v=\"131.0.6778.85\"\r\n" +
	"X-Forwarded-For: 198.51.100.66\r\n" +
	"\r\n"

func TestHandlerCapturesHit(t *testing.T) {
	q := &memQueue{}
	h, _ := newHandler(t, q)
	before := time.Now().UnixNano()
	ctx := serve(t, h, fullRequest, "203.0.113.7:5555")
	if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Body(), GIF) {
		t.Fatalf("answer %d %x", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	recs := q.all()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	checks := map[string][2]string{
		"api key":          {string(r.APIKey), "shop-key"},
		"project":          {string(r.ProjectID), "shop"},
		"client ip":        {r.ClientIP.String(), "203.0.113.7"}, // no trusted proxy: XFF ignored
		"user agent":       {string(r.UserAgent), "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0"},
		"referer":          {string(r.Referer), "https://shop.example.com/"},
		"host":             {string(r.Host), "track.example.com"},
		"query":            {string(r.Query), "key=shop-key&url=https%3A%2F%2Fshop.example.com%2Fp%2F1&utm_source=mail&cb=123"},
		"accept-language":  {string(r.AcceptLanguage), "de-DE,de;q=0.9"},
		"ch ua":            {string(r.Hints.UA), `"Chromium";v="131"`},
		"ch mobile":        {string(r.Hints.Mobile), "?0"},
		"ch platform":      {string(r.Hints.Platform), `"Linux"`},
		"ch platform ver":  {string(r.Hints.PlatformVersion), `"6.1"`},
		"ch model":         {string(r.Hints.Model), `""`},
		"ch full versions": {string(r.Hints.FullVersionList), `"Chromium";v="131.0.6778.85"`},
		"instance":         {string(r.EdgeInstance), "edge-test-1"},
		"method":           {string(r.Method), "GET"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: %q, want %q", name, c[0], c[1])
		}
	}
	if !r.DNT || !r.GPC || !r.Prefetch {
		t.Errorf("flags dnt=%v gpc=%v prefetch=%v, want all true", r.DNT, r.GPC, r.Prefetch)
	}
	if r.SchemaVersion != hit.SchemaVersion || r.EventID.IsZero() {
		t.Errorf("schema %d, event id %s", r.SchemaVersion, r.EventID)
	}
	if r.ReceivedAtNs < before || r.ReceivedAtNs > time.Now().UnixNano() {
		t.Errorf("receive time %d outside the request", r.ReceivedAtNs)
	}
	if r.EventID.UnixMilli() != r.ReceivedAtNs/1e6 {
		t.Errorf("event id time %d, receive time %d", r.EventID.UnixMilli(), r.ReceivedAtNs/1e6)
	}
}

func TestHandlerMinimalHit(t *testing.T) {
	q := &memQueue{}
	h, _ := newHandler(t, q)
	serve(t, h, "GET /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\n\r\n", "[2001:db8::7]:1")
	r := q.all()[0]
	if r.DNT || r.GPC || r.Prefetch || len(r.Referer) != 0 || r.ClientIP.String() != "2001:db8::7" {
		t.Fatalf("minimal hit decoded as %+v", r)
	}
}

func TestHandlerOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		request string
		status  int
		reason  string
		result  string
		method  string // recorded method; "" means not recorded
	}{
		{"missing key", "GET /api/v1/pixel?url=x HTTP/1.1\r\nHost: t\r\n\r\n", 400, "missing key", ResultMissingKey, ""},
		{"empty key", "GET /api/v1/pixel?key= HTTP/1.1\r\nHost: t\r\n\r\n", 400, "missing key", ResultMissingKey, ""},
		{"unknown key", "GET /api/v1/pixel?key=nope HTTP/1.1\r\nHost: t\r\n\r\n", 403, "unknown key", ResultUnknownKey, ""},
		{"host from url not allowed", "GET /api/v1/pixel?key=shop-key&url=https://evil.test/ HTTP/1.1\r\nHost: t\r\nReferer: https://shop.example.com/\r\n\r\n", 403, "host not allowed", ResultHostNotAllowed, ""},
		{"url wins over referer", "GET /api/v1/pixel?key=shop-key&url=https://a.shop.example.org/x HTTP/1.1\r\nHost: t\r\nReferer: https://evil.test/\r\n\r\n", 200, "", ResultAccepted, "GET"},
		{"host from referer not allowed", "GET /api/v1/pixel?key=shop-key HTTP/1.1\r\nHost: t\r\nReferer: https://evil.test/\r\n\r\n", 403, "host not allowed", ResultHostNotAllowed, ""},
		{"referer allowed", "GET /api/v1/pixel?key=shop-key HTTP/1.1\r\nHost: t\r\nReferer: https://SHOP.example.com/\r\n\r\n", 200, "", ResultAccepted, "GET"},
		{"no page host (email open)", "GET /api/v1/pixel?key=shop-key HTTP/1.1\r\nHost: t\r\nUser-Agent: GoogleImageProxy\r\n\r\n", 200, "", ResultAccepted, "GET"},
		{"unreadable url falls back to referer", "GET /api/v1/pixel?key=shop-key&url=notaurl HTTP/1.1\r\nHost: t\r\nReferer: https://evil.test/\r\n\r\n", 403, "host not allowed", ResultHostNotAllowed, ""},
		{"post recorded", "POST /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n{\"ignored\":1}", 200, "", ResultAccepted, "POST"},
		{"head answered, not recorded", "HEAD /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\n\r\n", 200, "", ResultHead, ""},
		{"head with unknown key", "HEAD /api/v1/pixel?key=nope HTTP/1.1\r\nHost: t\r\n\r\n", 403, "unknown key", ResultUnknownKey, ""},
		{"other path", "GET /favicon.ico HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not found", ResultNotFound, ""},
		{"trailing slash is another path", "GET /api/v1/pixel/?key=open-key HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not found", ResultNotFound, ""},
		{"put", "PUT /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, "method not allowed", ResultBadMethod, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &memQueue{}
			h, reg := newHandler(t, q)
			ctx := serve(t, h, tt.request, "192.0.2.1:1000")
			resp := &ctx.Response
			if resp.StatusCode() != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			if !bytes.Equal(resp.Body(), GIF) {
				t.Errorf("body is not the GIF: %q", resp.Body())
			}
			if got := string(resp.Header.Peek(ErrorHeader)); got != tt.reason {
				t.Errorf("%s: %q, want %q", ErrorHeader, got, tt.reason)
			}
			if tt.status == 405 && string(resp.Header.Peek("Allow")) != "GET, HEAD, POST" {
				t.Errorf("Allow: %q", resp.Header.Peek("Allow"))
			}
			recs := q.all()
			switch {
			case tt.method == "" && len(recs) != 0:
				t.Errorf("recorded %d hits, want none", len(recs))
			case tt.method != "" && (len(recs) != 1 || string(recs[0].Method) != tt.method):
				t.Errorf("recorded %d hits, want one with method %s", len(recs), tt.method)
			}
			if n := hits(t, reg, tt.result); n != 1 {
				t.Errorf("hits_total{result=%q} = %v, want 1", tt.result, n)
			}
		})
	}
}

// hits returns pixelstream_edge_hits_total{result=result}.
func hits(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pixelstream_edge_hits_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestFullQueueStillAnswersPixel(t *testing.T) {
	q := &memQueue{full: true}
	h, _ := newHandler(t, q)
	ctx := serve(t, h, fullRequest, "203.0.113.7:5555")
	if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Body(), GIF) {
		t.Fatalf("full queue changed the answer: %d", ctx.Response.StatusCode())
	}
}

// startServer runs h behind the real server setup on an in-memory
// listener.
func startServer(t *testing.T, h *Handler) *fasthttputil.InmemoryListener {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv, err := server.New(server.Config{
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		MaxHeaderBytes: 16384, MaxBodyBytes: 8192, WriteError: WriteGIF,
		Registerer: prometheus.NewRegistry(),
	}, h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln
}

// roundTrip sends raw over a connection whose client address is from and
// reads the response.
func roundTrip(t *testing.T, ln *fasthttputil.InmemoryListener, from, raw string, head bool) *fasthttp.Response {
	t.Helper()
	addr, err := net.ResolveTCPAddr("tcp", from)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.DialWithLocalAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp := new(fasthttp.Response)
	resp.SkipBody = head
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestOverTheWire(t *testing.T) {
	q := &memQueue{}
	h, _ := newHandler(t, q, "10.0.0.0/8")
	ln := startServer(t, h)

	t.Run("head gets headers only", func(t *testing.T) {
		resp := roundTrip(t, ln, "198.51.100.1:1", "HEAD /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true)
		if resp.StatusCode() != 200 || len(resp.Body()) != 0 {
			t.Fatalf("HEAD: %d, %d body bytes", resp.StatusCode(), len(resp.Body()))
		}
		checkPixelHeaders(t, resp)
	})
	t.Run("get", func(t *testing.T) {
		resp := roundTrip(t, ln, "198.51.100.1:1", "GET /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false)
		if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), GIF) {
			t.Fatalf("GET: %d %x", resp.StatusCode(), resp.Body())
		}
		checkPixelHeaders(t, resp)
	})
	t.Run("long url accepted", func(t *testing.T) {
		long := "GET /api/v1/pixel?key=open-key&url=https%3A%2F%2Fx.test%2F" + strings.Repeat("a", 12000) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
		if resp := roundTrip(t, ln, "198.51.100.1:1", long, false); resp.StatusCode() != 200 {
			t.Fatalf("12 KB URL: %d", resp.StatusCode())
		}
	})

	before := len(q.all())
	tests := []struct{ peer, xff, want string }{
		{"198.51.100.1:1", "203.0.113.9", "198.51.100.1"},               // untrusted peer: header ignored
		{"10.1.2.3:1", "1.1.1.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"}, // trusted chain
		{"10.1.2.3:1", "", "10.1.2.3"},
	}
	for _, tt := range tests {
		req := "GET /api/v1/pixel?key=open-key&ip=6.6.6.6 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		if tt.xff != "" {
			req += "X-Forwarded-For: " + tt.xff + "\r\n"
		}
		roundTrip(t, ln, tt.peer, req+"\r\n", false)
	}
	// Two X-Forwarded-For headers: walked from the last one.
	roundTrip(t, ln, "10.1.2.3:1", "GET /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"+
		"X-Forwarded-For: 203.0.113.50\r\nX-Forwarded-For: 10.7.7.7\r\n\r\n", false)
	// Header names in lower case, as HTTP/2 front ends forward them.
	roundTrip(t, ln, "10.1.2.3:1", "GET /api/v1/pixel?key=open-key HTTP/1.1\r\nhost: t\r\nconnection: close\r\n"+
		"x-forwarded-for: 203.0.113.60\r\nreferer: https://shop.example/\r\naccept-language: de-CH\r\n"+
		"sec-ch-ua-platform: \"Linux\"\r\nsec-gpc: 1\r\nsec-purpose: prefetch\r\n\r\n", false)
	recs := q.all()[before:]
	want := []string{"198.51.100.1", "203.0.113.9", "10.1.2.3", "203.0.113.50", "203.0.113.60"}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, w := range want {
		if recs[i].ClientIP != netip.MustParseAddr(w) {
			t.Errorf("request %d: client %v, want %s", i, recs[i].ClientIP, w)
		}
	}
	if r := recs[len(recs)-1]; string(r.Referer) != "https://shop.example/" || string(r.AcceptLanguage) != "de-CH" ||
		string(r.Hints.Platform) != `"Linux"` || !r.GPC || !r.Prefetch || string(r.Host) != "t" {
		t.Errorf("lower-case header names: referer %q, accept-language %q, platform %q, gpc %v, prefetch %v, host %q",
			r.Referer, r.AcceptLanguage, r.Hints.Platform, r.GPC, r.Prefetch, r.Host)
	}
}

// discardSink acknowledges every batch at once.
type discardSink struct{}

func (discardSink) Write(context.Context, []kafka.Message) error { return nil }

// keepSink keeps copies of the records it is given.
type keepSink struct {
	mu     sync.Mutex
	values [][]byte
}

func (k *keepSink) Write(_ context.Context, msgs []kafka.Message) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range msgs {
		k.values = append(k.values, bytes.Clone(m.Value))
	}
	return nil
}

// The record's fields point into the request's buffers, which fasthttp
// reuses for the connection's next request: with the real publisher,
// still holding the first hit when the second is parsed into the same
// buffers, each record must carry its own request's bytes.
func TestRecordsOutliveTheRequestBuffers(t *testing.T) {
	sink := &keepSink{}
	pub, err := publish.New(publish.Config{Sink: sink, QueueSize: 16, Workers: 1, BatchSize: 16,
		Linger: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHandler(t, pub)
	conn := newConn(net.IPv4(203, 0, 113, 7))
	uas := []string{"AAAA/1.0 (first)", "BBBB/2.0 (other)"}
	for i, ua := range uas {
		raw := "GET /api/v1/pixel?key=open-key&n=" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: t\r\nUser-Agent: " + ua +
			"\r\nAccept-Language: " + ua + "\r\n\r\n"
		conn.serve(t, h, []byte(raw))
	}
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(sink.values) != len(uas) {
		t.Fatalf("%d records, want %d", len(sink.values), len(uas))
	}
	for i, v := range sink.values {
		var r hit.Raw
		if err := r.Unmarshal(v); err != nil {
			t.Fatal(err)
		}
		want := "n=" + strconv.Itoa(i)
		if string(r.UserAgent) != uas[i] || string(r.AcceptLanguage) != uas[i] || !strings.HasSuffix(string(r.Query), want) {
			t.Errorf("record %d: User-Agent %q, Accept-Language %q, query %q; want %q and a query ending %q",
				i, r.UserAgent, r.AcceptLanguage, r.Query, uas[i], want)
		}
	}
}

// BenchmarkHandler measures the whole handler for a realistic accepted hit:
// fasthttp parsing the request (as the server does before the handler),
// key and host checks, client IP, filling a pooled record, and the hand-off
// to the real publisher, whose workers encode and recycle the records
// concurrently. allocs/op counts every goroutine, workers included.
func BenchmarkHandler(b *testing.B) { benchmarkHandler(b, 0) }

// BenchmarkHandlerRateLimited: the same with a per-key rate limit that
// lets every hit through (the token bucket's cost).
func BenchmarkHandlerRateLimited(b *testing.B) { benchmarkHandler(b, 1e12) }

func benchmarkHandler(b *testing.B, rate float64) {
	pub, err := publish.New(publish.Config{Sink: discardSink{}, QueueSize: 8192, Workers: 2, BatchSize: 256, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	prefixes, _ := clientip.ParsePrefixes([]string{"10.0.0.0/8"})
	h, err := New(Config{Keys: testKeys(b), ClientIP: clientip.New(prefixes), Queue: pub, Instance: "edge-test-1",
		Registerer: prometheus.NewRegistry(), RateLimit: rate, RateBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte(strings.Replace(fullRequest, "X-Forwarded-For: 198.51.100.66", "X-Forwarded-For: 198.51.100.66, 10.1.1.1", 1))
	conn := newConn(net.IPv4(10, 0, 0, 1))
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		conn.serve(b, h, raw)
	}
	b.StopTimer()
	if conn.ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d", conn.ctx.Response.StatusCode())
	}
}

// conn parses requests into one RequestCtx, reusing its buffers as fasthttp
// does on a keep-alive connection, and hands them to a Handler.
type conn struct {
	ctx *fasthttp.RequestCtx
	rd  *bytes.Reader
	br  *bufio.Reader
}

func newConn(peer net.IP) *conn {
	c := &conn{ctx: new(fasthttp.RequestCtx), rd: bytes.NewReader(nil)}
	c.ctx.Init(new(fasthttp.Request), &net.TCPAddr{IP: peer, Port: 4242}, nil)
	c.br = bufio.NewReader(c.rd)
	return c
}

// serve parses raw into the connection's RequestCtx and handles it.
func (c *conn) serve(tb testing.TB, h *Handler, raw []byte) {
	c.rd.Reset(raw)
	c.br.Reset(c.rd)
	c.ctx.Request.Reset()
	c.ctx.Response.Reset()
	if err := c.ctx.Request.Read(c.br); err != nil {
		tb.Fatal(err)
	}
	h.Handle(c.ctx)
}
