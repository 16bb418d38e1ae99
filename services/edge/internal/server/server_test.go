package server

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/admin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header ticker never stops, and a
		// stopped server's worker-pool cleaner notices the stop only after
		// its current sleep (MaxIdleWorkerDuration, 10 s).
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
}

const limit = 16384

// errorMark stands in for the pixel: it makes error answers recognisable.
func errorMark(ctx *fasthttp.RequestCtx, status int, reason []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.Set("X-Pixelstream-Error", string(reason))
	ctx.SetBodyString("GIF")
}

type testServer struct {
	*Server
	addr   string
	done   chan error
	served error
	waited bool
	ready  *admin.Readiness
}

// wait returns Serve's result once Serve has returned.
func (ts *testServer) wait() error {
	if !ts.waited {
		ts.served, ts.waited = <-ts.done, true
	}
	return ts.served
}

func start(t *testing.T, cfg Config, h fasthttp.RequestHandler) *testServer {
	t.Helper()
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 5 * time.Second
	}
	cfg.MaxHeaderBytes = limit
	cfg.MaxBodyBytes = 1024
	cfg.WriteError = errorMark
	cfg.Registerer = prometheus.NewPedanticRegistry()
	cfg.Log = zap.NewNop()
	if cfg.Readiness == nil {
		cfg.Readiness = &admin.Readiness{}
	}
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: ln.Addr().String(), done: make(chan error, 1), ready: cfg.Readiness}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.cfg.DrainDelay = 0
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := ts.wait(); err != nil {
		t.Errorf("serve: %v", err)
	}
}

func ok(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }

// send writes raw requests on one connection and reads one response per
// request.
func send(t *testing.T, addr string, raws ...string) []*fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var out []*fasthttp.Response
	for _, raw := range raws {
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp := new(fasthttp.Response)
		if err := resp.Read(br); err != nil {
			t.Fatal(err)
		}
		out = append(out, resp)
	}
	return out
}

// request builds "GET <target> HTTP/1.1" plus headers padded with one
// X-Pad header so that the header block is exactly total bytes (total = 0:
// no padding).
func request(target string, total int) string {
	head := "GET " + target + " HTTP/1.1\r\nHost: t\r\n"
	if total == 0 {
		return head + "\r\n"
	}
	pad := total - len(head) - len("X-Pad: \r\n\r\n")
	return head + "X-Pad: " + strings.Repeat("p", pad) + "\r\n\r\n"
}

func TestLimits(t *testing.T) {
	ts := start(t, Config{}, ok)
	longTarget := func(n int) string { return "/api/v1/pixel?key=k&url=" + strings.Repeat("u", n) }
	tests := []struct {
		name   string
		raw    string
		status int
		reason string
	}{
		{"header block of exactly the limit", request("/x", limit), 200, ""},
		{"one byte over, line fits", request("/x", limit+1), 431, "headers too large"},
		{"long but fitting url", request(longTarget(15000), 0), 200, ""},
		{"request line over the limit", request(longTarget(20000), 0), 414, "request line too long"},
		{"request line of the whole buffer", request(longTarget(limit), 0), 414, "request line too long"},
		{"line fits, headers do not", request(longTarget(15000), 17000), 431, "headers too large"},
		{"huge headers", request("/x", 40000), 431, "headers too large"},
		{"body over the limit", "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("b", 2000), 413, "body too large"},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "bad request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, ts.addr, tt.raw)[0]
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode(), tt.status)
			}
			if got := string(resp.Header.Peek("X-Pixelstream-Error")); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if tt.status != 200 && string(resp.Body()) != "GIF" {
				t.Errorf("error answer body %q, want the pixel", resp.Body())
			}
		})
	}
	if n := testutil.ToFloat64(ts.uriTooLong); n != 2 {
		t.Errorf("uri_too_long = %v, want 2", n)
	}
	if n := testutil.ToFloat64(ts.headersTooLarge); n != 3 {
		t.Errorf("headers_too_large = %v, want 3", n)
	}
}

// TestTooLongAfterKeepAlive checks the 414/431 decision on a connection that
// already carried requests: only the current request's bytes may count.
func TestTooLongAfterKeepAlive(t *testing.T) {
	ts := start(t, Config{}, ok)
	resps := send(t, ts.addr,
		request("/a", 0),
		request("/b", 3000),
		request("/c?u="+strings.Repeat("u", 20000), 0))
	if resps[0].StatusCode() != 200 || resps[1].StatusCode() != 200 || resps[2].StatusCode() != 414 {
		t.Fatalf("statuses %d %d %d, want 200 200 414", resps[0].StatusCode(), resps[1].StatusCode(), resps[2].StatusCode())
	}
	resps = send(t, ts.addr, request("/a", 0), request("/b", 20000))
	if resps[1].StatusCode() != 431 {
		t.Fatalf("status %d, want 431", resps[1].StatusCode())
	}
}

func TestReadTimeout(t *testing.T) {
	ts := start(t, Config{ReadTimeout: 200 * time.Millisecond}, ok)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A client that starts a request and stalls (slowloris).
	if _, err := c.Write([]byte("GET /api/v1/pixel?key=k HTTP/1.1\r\nHost: t\r\nUser-Ag")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 408 || string(resp.Header.Peek("X-Pixelstream-Error")) != "request timeout" {
		t.Fatalf("status %d %q", resp.StatusCode(), resp.Header.Peek("X-Pixelstream-Error"))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timed out after %v with a 200ms read timeout", d)
	}
	if n := testutil.ToFloat64(ts.timeout); n != 1 {
		t.Errorf("timeout counter %v", n)
	}
}

// TestWriteTimeout: a client that stops reading cannot hold a connection
// (and a worker) longer than the write timeout. The pixel itself fits in a
// socket buffer, so a large body stands in for a stalled reader.
func TestWriteTimeout(t *testing.T) {
	big := make([]byte, 64<<20)
	ts := start(t, Config{WriteTimeout: 200 * time.Millisecond}, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.SetBodyRaw(big)
	})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(request("/big", 0))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // not reading: the server's write blocks, then times out
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var n int64
	buf := make([]byte, 1<<20)
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			break
		}
	}
	if n >= int64(len(big)) {
		t.Fatalf("read %d bytes: the whole response arrived despite the write timeout", n)
	}
}

func TestIdleTimeoutClosesKeepAlive(t *testing.T) {
	ts := start(t, Config{IdleTimeout: 200 * time.Millisecond}, ok)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	_, _ = c.Write([]byte(request("/a", 0)))
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle connection got data")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

func TestPanicRecovered(t *testing.T) {
	ts := start(t, Config{}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/panic" {
			panic("boom")
		}
		ok(ctx)
	})
	resp := send(t, ts.addr, request("/panic", 0))[0]
	if resp.StatusCode() != 500 || string(resp.Body()) != "GIF" || string(resp.Header.Peek("X-Pixelstream-Error")) != "internal error" {
		t.Fatalf("panic answered %d %q", resp.StatusCode(), resp.Body())
	}
	if !resp.ConnectionClose() {
		t.Error("connection kept open after a panic")
	}
	if resp := send(t, ts.addr, request("/", 0))[0]; resp.StatusCode() != 200 {
		t.Fatalf("server broken after panic: %d", resp.StatusCode())
	}
	if n := testutil.ToFloat64(ts.panics); n != 1 {
		t.Fatalf("panics_total = %v", n)
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the handler stuck
	var served atomic.Int64
	ready := &admin.Readiness{}
	ts := start(t, Config{DrainDelay: 300 * time.Millisecond, Readiness: ready}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			close(entered)
			<-release
		}
		served.Add(1)
		ok(ctx)
	})

	// An idle keep-alive connection must not hold shutdown up.
	idle, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = idle.Write([]byte(request("/warm", 0)))
	var warm fasthttp.Response
	if err := warm.Read(bufio.NewReader(idle)); err != nil {
		t.Fatal(err)
	}

	slow := make(chan *fasthttp.Response, 1)
	go func() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Error(err)
			slow <- nil
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(request("/slow", 0)))
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Error(err)
			slow <- nil
			return
		}
		slow <- &resp
	}()
	<-entered

	shutdownDone := make(chan error, 1)
	begin := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownDone <- ts.Shutdown(ctx)
	}()

	// Readiness fails at once; the listener still accepts during the delay,
	// because load balancers need time to notice.
	time.Sleep(50 * time.Millisecond)
	if err := ready.Check(); !errors.Is(err, admin.ErrDraining) {
		t.Fatalf("readiness during drain: %v", err)
	}
	if resp := send(t, ts.addr, request("/during-drain", 0))[0]; resp.StatusCode() != 200 || !resp.ConnectionClose() {
		t.Fatalf("request during drain: %d, close=%v", resp.StatusCode(), resp.ConnectionClose())
	}

	// After the delay the listener is closed.
	time.Sleep(400 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("new connection accepted after the drain delay")
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	default:
	}

	// The in-flight request finishes, then shutdown completes.
	unblock()
	if resp := <-slow; resp == nil || resp.StatusCode() != 200 {
		t.Fatal("in-flight request was not completed")
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(begin); d < 300*time.Millisecond {
		t.Fatalf("shutdown took %v, less than the drain delay", d)
	}
	if err := ts.wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if served.Load() != 3 {
		t.Fatalf("served %d requests, want 3", served.Load())
	}
}

func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	ts := start(t, Config{}, func(ctx *fasthttp.RequestCtx) {
		close(entered)
		<-release
	})
	go func() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(request("/stuck", 0)))
		_, _ = bufio.NewReader(c).ReadByte()
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown with a stuck request: %v", err)
	}
	close(release)
	if err := ts.wait(); err != nil {
		t.Fatal(err)
	}
	// Let the stuck connection finish before the leak check.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := ts.Shutdown(ctx2); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsZeroLimits(t *testing.T) {
	if _, err := New(Config{Registerer: prometheus.NewRegistry()}, ok); err == nil {
		t.Fatal("zero limits accepted (fasthttp would use its defaults)")
	}
}
