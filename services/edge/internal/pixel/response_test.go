package pixel

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"image/gif"
	"io"
	"testing"

	"github.com/valyala/fasthttp"
)

const gifHex = "47494638396101000100f00000ffffff00000021f90405000000002c00000000010001000002024401003b"

func TestGIF(t *testing.T) {
	if got := hex.EncodeToString(GIF); got != gifHex {
		t.Fatalf("GIF = %s", got)
	}
	img, err := gif.Decode(bytes.NewReader(GIF))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Fatalf("bounds %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Fatalf("pixel not transparent (alpha %d)", a)
	}
}

func checkPixelHeaders(t *testing.T, resp *fasthttp.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Type":                 "image/gif",
		"Content-Length":               "43",
		"Cache-Control":                "no-cache, no-store, must-revalidate, max-age=0",
		"Pragma":                       "no-cache",
		"Expires":                      "0",
		"Cross-Origin-Resource-Policy": "cross-origin",
	}
	for k, v := range want {
		if got := string(resp.Header.Peek(k)); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if s := resp.Header.Peek("Server"); len(s) != 0 {
		t.Errorf("Server header %q advertised", s)
	}
}

func TestWriteGIF(t *testing.T) {
	var ctx fasthttp.RequestCtx
	WriteGIF(&ctx, fasthttp.StatusForbidden, reasonUnknownKey)
	// Round-trip through the wire format, as a client sees it.
	var buf bytes.Buffer
	if _, err := ctx.Response.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(&buf)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusForbidden {
		t.Errorf("status %d", resp.StatusCode())
	}
	checkPixelHeaders(t, &resp)
	if got := string(resp.Header.Peek(ErrorHeader)); got != "unknown key" {
		t.Errorf("%s: %q", ErrorHeader, got)
	}
	if !bytes.Equal(resp.Body(), GIF) {
		t.Errorf("body %x", resp.Body())
	}
}

// BenchmarkResponse covers the response path of an accepted hit: status,
// headers and body set on the context, then serialised to the connection's
// buffered writer, as fasthttp does after the handler. 0 allocs/op.
func BenchmarkResponse(b *testing.B) {
	var ctx fasthttp.RequestCtx
	bw := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	for b.Loop() {
		WriteGIF(&ctx, fasthttp.StatusOK, nil)
		if err := ctx.Response.Write(bw); err != nil {
			b.Fatal(err)
		}
		ctx.Response.Reset()
	}
}

func TestResponseDoesNotAllocate(t *testing.T) {
	var ctx fasthttp.RequestCtx
	bw := bufio.NewWriterSize(io.Discard, 4096)
	WriteGIF(&ctx, fasthttp.StatusOK, nil) // warm the header buffers
	_ = ctx.Response.Write(bw)
	ctx.Response.Reset()
	n := testing.AllocsPerRun(200, func() {
		WriteGIF(&ctx, fasthttp.StatusBadRequest, reasonMissingKey)
		_ = ctx.Response.Write(bw)
		ctx.Response.Reset()
	})
	if n != 0 {
		t.Fatalf("%v allocs per response", n)
	}
}
