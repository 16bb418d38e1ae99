package pixel

import (
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
	"github.com/pixelstream/pixelstream/services/edge/internal/projects"
	"github.com/pixelstream/pixelstream/services/edge/internal/publish"
)

// mixHeaders names the tab-separated columns of `psbench gen` after the
// path, as scripts/bench/realistic.lua sends them.
var mixHeaders = []string{"User-Agent", "X-Forwarded-For", "Referer", "Accept-Language",
	"Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform", "DNT"}

// mixRequests formats the requests of a `psbench gen` file as the load
// harness's wrk script does.
func mixRequests(b *testing.B, path string) [][]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var reqs [][]byte
	for line := range strings.Lines(string(data)) {
		fields := strings.Split(strings.TrimRight(line, "\n"), "\t")
		var s strings.Builder
		s.WriteString("GET " + fields[0] + " HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n" +
			"Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n" +
			"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
			"Sec-Fetch-Dest: image\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: cross-site\r\n")
		for i, name := range mixHeaders {
			if i+1 < len(fields) && fields[i+1] != "" {
				s.WriteString(name + ": " + fields[i+1] + "\r\n")
			}
		}
		s.WriteString("\r\n")
		reqs = append(reqs, []byte(s.String()))
	}
	if len(reqs) == 0 {
		b.Fatalf("%s: no requests", path)
	}
	return reqs
}

// BenchmarkHandlerMix is the edge's CPU per hit outside the kernel, on the
// load harness's traffic: the requests of PIXELSTREAM_REQUESTS_FILE
// (`psbench gen -n 20000 -o requests.tsv`), each parsed by fasthttp, handled,
// and published with the edge's default publisher settings to a sink that
// acknowledges at once. It runs on one processor (GOMAXPROCS 1, whatever
// -cpu says), as the harness pins the edge to one CPU: the workers then
// share it with the handler, as they do there. Cycling through 20,000
// distinct requests (~14 MB) makes the caches as cold as under load, which
// BenchmarkHandler's one request does not.
func BenchmarkHandlerMix(b *testing.B) {
	path := os.Getenv("PIXELSTREAM_REQUESTS_FILE")
	if path == "" {
		b.Skip("PIXELSTREAM_REQUESTS_FILE not set (psbench gen)")
	}
	reqs := mixRequests(b, path)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	pub, err := publish.New(publish.Config{Sink: discardSink{}, QueueSize: 8192, Workers: 4, BatchSize: 1024,
		Linger: 10 * time.Millisecond, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	keys, err := projects.Build([]projects.Spec{
		{ID: "shop", Key: "bench-shop"}, {ID: "news", Key: "bench-news"}, {ID: "saas", Key: "bench-saas"},
	})
	if err != nil {
		b.Fatal(err)
	}
	prefixes, _ := clientip.ParsePrefixes([]string{"127.0.0.0/8"})
	h, err := New(Config{Keys: keys, ClientIP: clientip.New(prefixes), Queue: pub, Instance: "bench",
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	conn := newConn(net.IPv4(127, 0, 0, 1))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		conn.serve(b, h, reqs[i])
		if i++; i == len(reqs) {
			i = 0
		}
		if conn.ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d", conn.ctx.Response.StatusCode())
		}
	}
}
