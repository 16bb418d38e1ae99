package pixel

import (
	"bufio"
	"bytes"
	"net"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
)

// queryArgsParsed reads fasthttp's private "parsed" flag of the request's
// query arguments: it is set once anything parses the whole query.
func queryArgsParsed(ctx *fasthttp.RequestCtx) bool {
	return reflect.ValueOf(&ctx.Request).Elem().FieldByName("uri").FieldByName("parsedQueryArgs").Bool()
}

// TestManyParametersNotParsed: a query of thousands of parameters (as many
// as fit in the header limit) is recorded as sent, and nothing in the
// handler parses it into fasthttp's argument table.
func TestManyParametersNotParsed(t *testing.T) {
	var q strings.Builder
	for i := 0; q.Len() < 15000; i++ {
		q.WriteString("a=1&")
	}
	q.WriteString("url=https%3A%2F%2Fshop.example.com%2F&key=shop-key")
	raw := "GET /api/v1/pixel?" + q.String() + " HTTP/1.1\r\nHost: t\r\n\r\n"
	mq := &memQueue{}
	h, _ := newHandler(t, mq)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(new(fasthttp.Request), &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, nil)
	if err := ctx.Request.Read(bufio.NewReaderSize(strings.NewReader(raw), 32<<10)); err != nil {
		t.Fatal(err)
	}
	h.Handle(ctx)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	if queryArgsParsed(ctx) {
		t.Fatal("the handler parsed every query parameter")
	}
	if recs := mq.all(); len(recs) != 1 || string(recs[0].Query) != q.String() {
		t.Fatal("query not recorded as sent")
	}
	// The probe works: QueryArgs does set the flag.
	ctx.QueryArgs()
	if !queryArgsParsed(ctx) {
		t.Fatal("probe of fasthttp's parsed flag is broken")
	}
}

// TestManyParametersOverTheWire: the same through the real server, and a
// query past the header limit gets 414 with the GIF.
func TestManyParametersOverTheWire(t *testing.T) {
	mq := &memQueue{}
	h, _ := newHandler(t, mq)
	ln := startServer(t, h)
	fits := "GET /api/v1/pixel?key=open-key&" + strings.Repeat("a=1&", 3500) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
	if resp := roundTrip(t, ln, "198.51.100.1:1", fits, false); resp.StatusCode() != 200 {
		t.Fatalf("14 KB query of 3500 parameters: %d", resp.StatusCode())
	}
	million := "GET /api/v1/pixel?key=open-key&" + strings.Repeat("a&", 1_000_000) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
	resp := roundTrip(t, ln, "198.51.100.1:1", million, false)
	if resp.StatusCode() != 414 || !bytes.Equal(resp.Body(), GIF) {
		t.Fatalf("a million parameters: %d %q", resp.StatusCode(), resp.Body())
	}
}

// TestInvalidUTF8: bytes that are not UTF-8 in headers and the query are
// recorded with U+FFFD in their place (records are protobuf strings), the
// hit is answered and recorded, never refused or crashed on.
func TestInvalidUTF8(t *testing.T) {
	mq := &memQueue{}
	h, _ := newHandler(t, mq)
	ln := startServer(t, h)
	raw := "GET /api/v1/pixel?key=open-key&q=caf\xe9&ok=%FF HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
		"User-Agent: Mozilla\xff\xfe/5.0 \xc3\xa9t\xc3\r\n" +
		"Referer: https://shop.example.com/\xe9t\xe9\r\n" +
		"Accept-Language: fr\x80\r\n\r\n"
	resp := roundTrip(t, ln, "198.51.100.1:1", raw, false)
	if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), GIF) {
		t.Fatalf("status %d", resp.StatusCode())
	}
	recs := mq.all()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	for name, got := range map[string][]byte{"query": r.Query, "user agent": r.UserAgent, "referer": r.Referer, "accept-language": r.AcceptLanguage} {
		if !utf8.Valid(got) {
			t.Errorf("%s recorded as invalid UTF-8: %q", name, got)
		}
	}
	if string(r.Query) != "key=open-key&q=caf\uFFFD&ok=%FF" {
		t.Errorf("query %q", r.Query)
	}
	if string(r.UserAgent) != "Mozilla\uFFFD/5.0 \u00e9t\uFFFD" {
		t.Errorf("user agent %q", r.UserAgent)
	}
}

func TestAppendText(t *testing.T) {
	for _, s := range []string{"", "plain", "caf\xe9", "\xff\xfe\xfd", "ok\xc3", "é€😀", "a\x00b", "\xed\xa0\x80"} {
		if got, want := string(appendText(nil, []byte(s))), strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Errorf("appendText(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzAppendText(f *testing.F) {
	f.Add([]byte("caf\xe9 \xc3\xa9"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := string(appendText([]byte("x"), b)), "x"+strings.ToValidUTF8(string(b), "\uFFFD"); got != want {
			t.Fatalf("appendText(%q) = %q, want %q", b, got, want)
		}
	})
}

// FuzzQueryParam: the handler's query scan finds the same key and url
// values as fasthttp's Args, which it replaces. The handler uses values
// only, so a parameter without '=' may be "found, empty" on our side and
// "absent" on fasthttp's (its Args drops such a name in some positions,
// e.g. "0&0&0&key"): both mean no value.
func FuzzQueryParam(f *testing.F) {
	for _, q := range []string{
		"key=abc&url=https%3A%2F%2Fx.test%2F",
		"k%65y=a+b&key=second",
		"url&key",
		"key=%zz%4&url=%",
		"&&key=&key=x",
		"a=1;key=2&key=%2B+",
		"key=%+",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var args fasthttp.Args
		args.Parse(q)
		for _, name := range []string{"key", "url"} {
			raw, found := queryParam([]byte(q), name)
			want := args.Peek(name)
			if found != (want != nil) && (len(raw) > 0 || len(want) > 0) {
				t.Fatalf("%s in %q: found %v %q, fasthttp %q", name, q, found, raw, want)
			}
			if !found {
				continue
			}
			got, cut := decodeInto(make([]byte, 0, len(raw)+1), raw)
			if cut || !bytes.Equal(got, want) {
				t.Fatalf("%s in %q: %q, fasthttp %q", name, q, got, want)
			}
			if escaped(raw) == false && !bytes.Equal(raw, want) {
				t.Fatalf("%s in %q: unescaped %q differs from fasthttp %q", name, q, raw, want)
			}
		}
	})
}

func TestRateLimitedHandler(t *testing.T) {
	mq := &memQueue{}
	reg := prometheus.NewPedanticRegistry()
	h, err := New(Config{Keys: testKeys(t), ClientIP: clientip.New(nil), Queue: mq, Instance: "e", Registerer: reg,
		RateLimit: 0.001, RateBurst: 2})
	if err != nil {
		t.Fatal(err)
	}
	req := "GET /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\n\r\n"
	for i, want := range []int{200, 200, 429, 429} {
		ctx := serve(t, h, req, "192.0.2.1:1")
		if ctx.Response.StatusCode() != want {
			t.Fatalf("hit %d: %d, want %d", i, ctx.Response.StatusCode(), want)
		}
		if want == 429 && (string(ctx.Response.Header.Peek(ErrorHeader)) != "rate limited" || !bytes.Equal(ctx.Response.Body(), GIF)) {
			t.Fatalf("429 answer: %q %q", ctx.Response.Header.Peek(ErrorHeader), ctx.Response.Body())
		}
	}
	// HEAD takes no token and another key has its own bucket.
	if ctx := serve(t, h, "HEAD /api/v1/pixel?key=open-key HTTP/1.1\r\nHost: t\r\n\r\n", "192.0.2.1:1"); ctx.Response.StatusCode() != 200 {
		t.Fatalf("HEAD: %d", ctx.Response.StatusCode())
	}
	if ctx := serve(t, h, "GET /api/v1/pixel?key=shop-key HTTP/1.1\r\nHost: t\r\n\r\n", "192.0.2.1:1"); ctx.Response.StatusCode() != 200 {
		t.Fatalf("other key: %d", ctx.Response.StatusCode())
	}
	if n := hits(t, reg, ResultRateLimited); n != 2 {
		t.Errorf("rate_limited = %v", n)
	}
	if len(mq.all()) != 3 {
		t.Errorf("%d recorded, want 3", len(mq.all()))
	}
}
