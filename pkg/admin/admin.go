// Package admin serves the operator endpoints of a service on their own
// port, away from public traffic: /healthz (the process is alive), /readyz
// (it can do its job now) and /metrics (Prometheus), plus /debug/pprof.
package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ErrDraining is the readiness error while the service shuts down.
var ErrDraining = errors.New("draining: shutting down")

// Readiness aggregates named checks. It reports not ready once Drain has
// been called, before any check, so a load balancer stops sending traffic
// before the pipeline starts shutting down.
type Readiness struct {
	draining atomic.Bool
	mu       sync.RWMutex
	checks   []check
}

type check struct {
	name string
	fn   func() error
}

// Add registers a check; fn returns nil when that part is ready.
func (r *Readiness) Add(name string, fn func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, check{name, fn})
}

// Drain marks the service as shutting down: readiness fails from now on.
func (r *Readiness) Drain() { r.draining.Store(true) }

// Check returns nil when ready, or the first failing reason.
func (r *Readiness) Check() error {
	if r.draining.Load() {
		return ErrDraining
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.checks {
		if err := c.fn(); err != nil {
			return errors.New(c.name + ": " + err.Error())
		}
	}
	return nil
}

// Handler returns the admin mux for the given readiness and registry.
func Handler(ready *Readiness, reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready.Check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	return mux
}

// Server is a running admin HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Start listens on addr and serves the admin endpoints in the background.
func Start(addr string, ready *Readiness, reg prometheus.Gatherer) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(ready, reg),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      60 * time.Second, // pprof profiles take 30 s
			IdleTimeout:       60 * time.Second,
		},
		ln:  ln,
		err: make(chan error, 1),
	}
	go func() { s.err <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server, waiting for in-flight requests up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.err; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
