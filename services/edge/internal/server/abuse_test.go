package server

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"
)

// TestSlowlorisDribble: a client that keeps sending header bytes, one at a
// time, never finishing its request, is cut off by the read timeout: the
// deadline covers the whole request, it is not renewed by each byte.
func TestSlowlorisDribble(t *testing.T) {
	ts := start(t, Config{ReadTimeout: 400 * time.Millisecond}, ok)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		_, _ = c.Write([]byte("GET /api/v1/pixel?key=k HTTP/1.1\r\nHost: t\r\n"))
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("no answer to a dribbling client: %v", err)
	}
	if resp.StatusCode() != 408 {
		t.Fatalf("status %d, want 408", resp.StatusCode())
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("cut off after %v with a 400ms read timeout", d)
	}
}

// TestSilentConnectionClosed: a connection that never sends a byte is
// closed after the read timeout, not kept until the idle timeout.
func TestSilentConnectionClosed(t *testing.T) {
	ts := start(t, Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute}, ok)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	began := time.Now()
	_, err = io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("silent connection closed after %v", d)
	}
}

// TestMaxConns: connections beyond MaxConns get 503 with the error answer
// (the pixel) and are closed; the open ones keep working, and a slot that
// frees up is used again.
func TestMaxConns(t *testing.T) {
	ts := start(t, Config{MaxConns: 3, ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}, ok)
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Let the server accept the three before the fourth comes.
	deadline := time.Now().Add(5 * time.Second)
	for ts.open.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open", ts.open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	extra, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = extra.Write([]byte(request("/x", 0)))
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(extra)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 503 || string(resp.Body()) != "GIF" || string(resp.Header.Peek("X-Pixelstream-Error")) != "too many connections" {
		t.Fatalf("over the limit: %d %q %q", resp.StatusCode(), resp.Body(), resp.Header.Peek("X-Pixelstream-Error"))
	}
	if n := testutil.ToFloat64(ts.tooManyConns); n != 1 {
		t.Errorf("too_many_connections = %v", n)
	}
	// A held connection is served.
	_ = held[0].SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = held[0].Write([]byte(request("/x", 0)))
	var ok fasthttp.Response
	if err := ok.Read(bufio.NewReader(held[0])); err != nil || ok.StatusCode() != 200 {
		t.Fatalf("held connection: %v %d", err, ok.StatusCode())
	}
	// Closing one frees its slot.
	held[1].Close()
	held = append(held[:1], held[2:]...)
	deadline = time.Now().Add(5 * time.Second)
	for ts.open.Load() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %d open", ts.open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp := send(t, ts.addr, request("/x", 0))[0]; resp.StatusCode() != 200 {
		t.Fatalf("after a slot freed: %d", resp.StatusCode())
	}
}

func TestRedactAddr(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("203.0.113.77"), Port: 5555}, "203.0.113.0/24"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 443}, "2001:db8:1::/48"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:198.51.100.9"), Port: 1}, "198.51.100.0/24"},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, "redacted"},
	}
	for _, tt := range tests {
		if got := RedactAddr(tt.addr); got != tt.want {
			t.Errorf("RedactAddr(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestFasthttpLogRedactsClientAddress: fasthttp's connection errors name
// the client; the logger keeps only its network.
func TestFasthttpLogRedactsClientAddress(t *testing.T) {
	// Covered through Printf directly: fasthttp formats
	// "error when serving connection %q<->%q: %v" with net.Addr values.
	var got string
	l := fasthttpLogger{log: newCapture(&got)}
	l.Printf("error when serving connection %q<->%q: %v",
		&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}, &net.TCPAddr{IP: net.ParseIP("198.51.100.23"), Port: 40000}, io.EOF)
	if got == "" || strings.Contains(got, "198.51.100.23") || !strings.Contains(got, "198.51.100.0/24") {
		t.Fatalf("logged %q", got)
	}
}
