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

	"github.com/pixelstream/pixelstream/pkg/pixelgif"
	"github.com/valyala/fasthttp"
)

// bareHandler answers with the edge's own pixel response (pkg/pixelgif),
// byte for byte, and does nothing else.
func bareHandler(ctx *fasthttp.RequestCtx) {
	pixelgif.Write(&ctx.Response, fasthttp.StatusOK)
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
	// The edge's listener settings: no TCP keep-alive probes.
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", *addr)
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
