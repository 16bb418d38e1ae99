package pixelgif

import (
	"bufio"
	"bytes"
	"image/gif"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestWrite(t *testing.T) {
	var resp fasthttp.Response
	Write(&resp, fasthttp.StatusForbidden)
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := resp.Write(w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	s := out.String()
	for _, want := range []string{"HTTP/1.1 403", "Content-Type: image/gif", "Content-Length: 43",
		"Cache-Control: no-cache, no-store, must-revalidate, max-age=0", "Pragma: no-cache", "Expires: 0",
		"Cross-Origin-Resource-Policy: cross-origin"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("response lacks %q:\n%s", want, s)
		}
	}
	img, err := gif.Decode(bytes.NewReader(resp.Body()))
	if err != nil {
		t.Fatalf("not a GIF: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Fatalf("size %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Fatalf("pixel not transparent: alpha %d", a)
	}
	if n := testing.AllocsPerRun(100, func() { Write(&resp, 200) }); n != 0 {
		t.Fatalf("Write allocates %.0f times", n)
	}
}
