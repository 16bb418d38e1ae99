// Package server runs the public fasthttp listener: limits and timeouts,
// error answers for requests fasthttp rejects before any handler runs,
// panic recovery, and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/admin"
)

// Config configures a Server.
type Config struct {
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// MaxHeaderBytes bounds the request line plus all headers; it becomes
	// fasthttp's ReadBufferSize, which is exactly that bound (the whole
	// header block must fit in the read buffer at once).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int
	// MaxConns bounds open client connections (default 10000). A
	// connection beyond it is answered 503 with the error answer
	// (WriteError) and closed at once, so idle or slow clients cannot
	// exhaust memory: each open connection holds a goroutine and read and
	// write buffers (about MaxHeaderBytes + 8 KiB).
	MaxConns int
	// DrainDelay is the time between readiness turning 503 and the
	// listener closing.
	DrainDelay time.Duration
	// Readiness is drained at the start of Shutdown (may be nil).
	Readiness *admin.Readiness
	// WriteError writes the answer for a request that failed before or in
	// the handler (the edge answers with the pixel); the default is plain
	// text.
	WriteError func(ctx *fasthttp.RequestCtx, status int, reason []byte)
	Registerer prometheus.Registerer
	Log        *zap.Logger
}

// Server is the public HTTP server.
type Server struct {
	srv        *fasthttp.Server
	cfg        Config
	log        *zap.Logger
	writeError func(ctx *fasthttp.RequestCtx, status int, reason []byte)
	// draining is set by Shutdown: answers then ask keep-alive clients
	// (load balancers) to reconnect, and a new connection lands on another
	// instance once readiness has failed.
	draining atomic.Bool
	// ln is Serve's listener, which Shutdown closes itself (lnMu orders
	// the two).
	lnMu sync.Mutex
	ln   net.Listener

	panics                                                     prometheus.Counter
	uriTooLong, headersTooLarge, bodyTooLarge, timeout, badReq prometheus.Counter
	tooManyConns                                               prometheus.Counter

	// open counts connections accepted and not yet closed; reject is the
	// whole answer written to a connection over MaxConns.
	open   atomic.Int64
	reject []byte
}

// Reasons a request failed before the handler, the values of the reason
// label of pixelstream_edge_request_errors_total, and the text of the
// X-Pixelstream-Error header.
const (
	ReasonURITooLong      = "uri_too_long"
	ReasonHeadersTooLarge = "headers_too_large"
	ReasonBodyTooLarge    = "body_too_large"
	ReasonTimeout         = "timeout"
	ReasonBadRequest      = "bad_request"
	ReasonTooManyConns    = "too_many_connections"
)

var (
	msgURITooLong      = []byte("request line too long")
	msgHeadersTooLarge = []byte("headers too large")
	msgBodyTooLarge    = []byte("body too large")
	msgTimeout         = []byte("request timeout")
	msgBadRequest      = []byte("bad request")
	msgInternal        = []byte("internal error")
	msgTooManyConns    = []byte("too many connections")
)

// New builds a Server around handler and registers its metrics.
func New(cfg Config, handler fasthttp.RequestHandler) (*Server, error) {
	if cfg.MaxHeaderBytes <= 0 || cfg.MaxBodyBytes <= 0 {
		// fasthttp reads zero as "default" (4 KiB headers, 4 MiB bodies).
		return nil, fmt.Errorf("server: header limit %d and body limit %d must be positive", cfg.MaxHeaderBytes, cfg.MaxBodyBytes)
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10000
	}
	s := &Server{cfg: cfg, log: log, writeError: cfg.WriteError}
	if s.writeError == nil {
		s.writeError = func(ctx *fasthttp.RequestCtx, status int, reason []byte) {
			ctx.Error(string(reason), status)
		}
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_edge_request_errors_total",
		Help: "Requests rejected before reaching the handler, by reason: uri_too_long (414), headers_too_large (431), body_too_large (413), timeout (408), bad_request (400), too_many_connections (503: connections over -max-conns).",
	}, []string{"reason"})
	s.uriTooLong = errs.WithLabelValues(ReasonURITooLong)
	s.headersTooLarge = errs.WithLabelValues(ReasonHeadersTooLarge)
	s.bodyTooLarge = errs.WithLabelValues(ReasonBodyTooLarge)
	s.timeout = errs.WithLabelValues(ReasonTimeout)
	s.badReq = errs.WithLabelValues(ReasonBadRequest)
	s.tooManyConns = errs.WithLabelValues(ReasonTooManyConns)
	var rc fasthttp.RequestCtx
	s.writeError(&rc, fasthttp.StatusServiceUnavailable, msgTooManyConns)
	rc.Response.SetConnectionClose()
	s.reject = []byte(rc.Response.String())
	s.panics = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_edge_panics_total",
		Help: "Handler panics recovered (each answered 500 with the pixel).",
	})
	for _, c := range []prometheus.Collector{errs, s.panics} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}

	s.srv = &fasthttp.Server{
		Handler:      s.recoverer(handler),
		ErrorHandler: s.handleError,
		// No limits by default in fasthttp: a client that never finishes
		// its request or never reads the answer would hold a connection.
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		ReadBufferSize:     cfg.MaxHeaderBytes,
		MaxRequestBodySize: cfg.MaxBodyBytes,
		// The listener enforces MaxConns with a pixel answer; fasthttp's
		// own limit (a text/plain 503) is only a backstop. MaxConnsPerIP
		// stays off: behind a load balancer every connection comes from
		// the balancer's few addresses.
		Concurrency: cfg.MaxConns + 64,
		// The body of an amp-analytics POST is ignored: never parse it.
		DisablePreParseMultipartForm: true,
		// Keep-alive clients are told to reconnect (elsewhere) while the
		// server shuts down.
		CloseOnShutdown:       true,
		NoDefaultServerHeader: true,
		// fasthttp's error messages otherwise quote request bytes: URLs
		// and client data do not belong in logs.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{log},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// graceful shutdown, and at once if Shutdown came first.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.draining.Load() {
		s.lnMu.Unlock()
		return ln.Close()
	}
	s.ln = ln
	s.lnMu.Unlock()
	return s.srv.Serve(&sniffListener{Listener: ln, srv: s})
}

// Shutdown stops the server gracefully: readiness reports 503 at once, so
// load balancers stop routing here, and answers carry Connection: close;
// after DrainDelay the listener closes,
// keep-alive connections are closed as they go idle, and in-flight
// requests finish. It returns ctx's error if connections are still open
// when ctx ends. The delay is cut short if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	if s.cfg.Readiness != nil {
		s.cfg.Readiness.Drain()
	}
	if s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	err := s.srv.ShutdownWithContext(ctx)
	// fasthttp closes only the listeners its Serve has registered: a
	// Shutdown that came before Serve got that far would leave it
	// accepting forever. Closing ln ends it either way (a second Close
	// only returns an error).
	s.lnMu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.lnMu.Unlock()
	return err
}

// recoverer turns a handler panic into a 500 with the pixel and a counted,
// logged event instead of a crashed process (fasthttp does not recover). It
// also closes connections after each answer while draining.
func (s *Server) recoverer(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if s.draining.Load() {
			ctx.SetConnectionClose()
		}
		defer func() {
			if v := recover(); v != nil {
				s.panics.Inc()
				s.log.Error("handler panic", zap.Any("panic", v), zap.Stack("stack"))
				ctx.Response.Reset()
				s.writeError(ctx, fasthttp.StatusInternalServerError, msgInternal)
				ctx.SetConnectionClose()
			}
		}()
		h(ctx)
	}
}

// handleError answers requests fasthttp could not read.
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &small):
		// fasthttp reports an over-long request line and an over-long
		// header block with the same error; the connection knows which.
		if sc, ok := ctx.Conn().(*sniffConn); ok && !sc.newlineWithin(s.cfg.MaxHeaderBytes) {
			s.uriTooLong.Inc()
			s.writeError(ctx, fasthttp.StatusRequestURITooLong, msgURITooLong)
			return
		}
		s.headersTooLarge.Inc()
		s.writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, msgHeadersTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.bodyTooLarge.Inc()
		s.writeError(ctx, fasthttp.StatusRequestEntityTooLarge, msgBodyTooLarge)
	case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, fasthttp.ErrTimeout):
		s.timeout.Inc()
		s.writeError(ctx, fasthttp.StatusRequestTimeout, msgTimeout)
	default:
		s.badReq.Inc()
		s.writeError(ctx, fasthttp.StatusBadRequest, msgBadRequest)
	}
}

// fasthttpLogger sends fasthttp's own messages (connection-level errors) to
// zap at debug level: they are per-client noise, and the outcomes that
// matter are counted in metrics.
type fasthttpLogger struct{ log *zap.Logger }

// Printf implements fasthttp.Logger. Client addresses in fasthttp's
// messages ("error when serving connection %q<->%q") are cut to their
// network (IPv4 /24, IPv6 /48): no full client IP goes to the logs.
func (l fasthttpLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "fasthttp"); ce != nil {
		for i, a := range args {
			if addr, ok := a.(net.Addr); ok {
				args[i] = RedactAddr(addr)
			}
		}
		ce.Write(zap.String("message", fmt.Sprintf(format, args...)))
	}
}

// RedactAddr returns the network of a client address, for logs: the IPv4
// /24 or IPv6 /48 it is in, without the port.
func RedactAddr(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "redacted"
	}
	ip := ap.Addr().Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return "redacted"
	}
	return p.String()
}
