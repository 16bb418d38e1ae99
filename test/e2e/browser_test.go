package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"strings"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// chromium returns the headless browser, failing under CI=true when it is
// missing (CI installs the Debian package) and skipping elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed but CI=true requires it (Debian: apt-get install -y chromium)")
	}
	t.Skip("chromium not installed (Debian: apt-get install -y chromium)")
	return ""
}

// loadPage opens url in headless Chromium (driven over the DevTools
// protocol) and returns the DOM once the page has loaded and settled.
// scripts=false disables JavaScript the way a no-JS visitor has it, so
// <noscript> content renders.
func loadPage(t *testing.T, bin, url string, scripts bool) string {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	// This chromedp's protocol tables predate some enum values the
	// browser sends; those decoding complaints are noise, not failures.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "could not unmarshal event") {
			t.Logf("chromedp: %s", msg)
		}
	}))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	var dom string
	err := chromedp.Run(ctx,
		emulation.SetScriptExecutionDisabled(!scripts),
		chromedp.Navigate(url),
		chromedp.Sleep(1500*time.Millisecond), // let images and frames load
		chromedp.OuterHTML("html", &dom, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	return dom
}

// TestBrowserLoadsPixel checks what a real browser does with the pixel: the
// <noscript> image fires with scripts off, the image loads under
// Cross-Origin-Embedder-Policy: require-corp (it needs our CORP header), a
// second load is not served from cache, and the Referer a cross-origin pixel
// receives is the page's origin only.
func TestBrowserLoadsPixel(t *testing.T) {
	kafkatest.Integration(t)
	bin := chromium(t)
	raw := kafkatest.UniqueTopic(t, "hits.raw")
	brokers := kafkatest.Brokers(t, raw)

	edgeAddr, edgeAdmin := freeAddr(t), freeAddr(t)
	edge := startProc(t, "edge", bins.edge, "KAFKA_BROKERS="+strings.Join(brokers, ","), "RAW_TOPIC="+raw,
		"EDGE_ADDR="+edgeAddr, "EDGE_ADMIN_ADDR="+edgeAdmin, "EDGE_KEYS=k-browser=proj-browser", "EDGE_DRAIN_DELAY=0s", "EDGE_SPOOL_DIR="+t.TempDir())
	waitReady(t, edge, "http://"+edgeAdmin+"/readyz", 30*time.Second)

	// The site is another origin (its own port) than the tracking host.
	_, edgePort, _ := net.SplitHostPort(edgeAddr)
	pixel := func(path string) string {
		return fmt.Sprintf("http://localhost:%s/api/v1/pixel?key=k-browser&cb=%s", edgePort, path)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/noscript/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html><body><h1>shop</h1>
<noscript><img src="%s" alt="" width="1" height="1" style="display:none"></noscript></body></html>`, pixel("noscript"))
	})
	mux.HandleFunc("/coep/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		fmt.Fprintf(w, `<!doctype html><html><body>
<img id="a" src="%s" onload="document.body.dataset.a='loaded-'+this.naturalWidth" onerror="document.body.dataset.a='error'">
<script>
// Another document loading the same URL after the first response: only the
// HTTP cache could serve it, and no-store forbids that.
setTimeout(function(){ var f=document.createElement('iframe'); f.src='/frame/'; f.onload=function(){document.body.dataset.b='frame'}; document.body.appendChild(f); }, 300);
</script></body></html>`, pixel("coep"))
	})
	mux.HandleFunc("/frame/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cross-Origin-Embedder-Policy", "require-corp")
		fmt.Fprintf(w, `<!doctype html><html><body><img src="%s"></body></html>`, pixel("coep"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	site := &http.Server{Handler: mux}
	go site.Serve(ln)
	t.Cleanup(func() { site.Close() })
	origin := "http://" + ln.Addr().String()

	if dom := loadPage(t, bin, origin+"/noscript/page.html", false); !strings.Contains(dom, "<h1>shop</h1>") {
		t.Fatalf("no-JS page did not render: %s", dom)
	}
	dom := loadPage(t, bin, origin+"/coep/page.html", true)
	if !strings.Contains(dom, `data-a="loaded-1"`) || !strings.Contains(dom, `data-b="frame"`) {
		t.Fatalf("pixel did not load as a 1x1 image under COEP require-corp: %s", dom)
	}

	// noscript: 1 hit; COEP page and its frame: the same URL twice, and
	// both must reach us (no-store: the browser may not reuse the response).
	msgs := kafkatest.ReadAll(t, brokers, raw, 3, 30*time.Second)
	counts := map[string]int{}
	for _, m := range msgs {
		var r hit.Raw
		if err := r.Unmarshal(m.Value); err != nil {
			t.Fatal(err)
		}
		cb := strings.TrimPrefix(string(r.Query[strings.Index(string(r.Query), "cb="):]), "cb=")
		counts[cb]++
		// strict-origin-when-cross-origin: the origin, never the path.
		if ref := string(r.Referer); ref != origin+"/" {
			t.Errorf("Referer %q, want the origin %q only", r.Referer, origin+"/")
		}
		if !strings.Contains(string(r.UserAgent), "Chrome") || string(r.ProjectID) != "proj-browser" {
			t.Errorf("hit: ua %q project %q", r.UserAgent, r.ProjectID)
		}
	}
	if counts["noscript"] != 1 || counts["coep"] != 2 || len(msgs) != 3 {
		t.Fatalf("hits by page: %v, want noscript:1 (scripts off) and coep:2 (page and frame, no-store)", counts)
	}
	t.Logf("chromium: noscript pixel fired with scripts off, pixel loaded under COEP require-corp, 2 of 2 repeat loads reached the edge, Referer was origin-only (%s/)", origin)
}
