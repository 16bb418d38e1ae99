package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof: CPU profiles to compare with the edge's
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The same 43-byte GIF and response headers as services/edge/internal/pixel
// (WriteGIF), so the bare server sends byte-identical answers.
var gif = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0xf0, 0x00, 0x00, 0xff, 0xff, 0xff,
	0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

var (
	hContentType  = []byte("image/gif")
	hCacheControl = []byte(fasthttp.HeaderCacheControl)
	vCacheControl = []byte("no-cache, no-store, must-revalidate, max-age=0")
	hPragma       = []byte(fasthttp.HeaderPragma)
	vPragma       = []byte("no-cache")
	hExpires      = []byte(fasthttp.HeaderExpires)
	vExpires      = []byte("0")
	hCORP         = []byte("Cross-Origin-Resource-Policy")
	vCORP         = []byte("cross-origin")
)

func bareHandler(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	resp.SetStatusCode(fasthttp.StatusOK)
	h := &resp.Header
	h.SetContentTypeBytes(hContentType)
	h.SetCanonical(hCacheControl, vCacheControl)
	h.SetCanonical(hPragma, vPragma)
	h.SetCanonical(hExpires, vExpires)
	h.SetCanonical(hCORP, vCORP)
	resp.SetBodyRaw(gif)
}

// cmdBare serves the GIF with the edge's server settings (timeouts, 16 KiB
// header limit, no Server header) and nothing else: no key lookup, no
// record, no Kafka. It is the ceiling the edge is compared with.
func cmdBare(args []string) error {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18480", "listen address")
	maxLife := fs.Duration("max-lifetime", 15*time.Minute, "exit after this long whatever happens")
	pprofAddr := fs.String("pprof", "", "serve /debug/pprof on this address (empty: off)")
	_ = fs.Parse(args)
	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}
	srv := &fasthttp.Server{
		Handler:                      bareHandler,
		ReadTimeout:                  5 * time.Second,
		WriteTimeout:                 5 * time.Second,
		IdleTimeout:                  75 * time.Second,
		ReadBufferSize:               16384,
		MaxRequestBodySize:           8192,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		NoDefaultServerHeader:        true,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("bare_addr=%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(*maxLife):
		}
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(sctx)
	}()
	return srv.Serve(ln)
}
