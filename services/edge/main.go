// Command edge is pixelstream's ingestion edge: it answers tracking-pixel
// requests with a transparent GIF and publishes each accepted hit to Kafka.
//
// This file only wires the internal packages together and runs the
// shutdown sequence; `edge -print-options` lists the options.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/admin"
	pkgconfig "github.com/pixelstream/pixelstream/pkg/config"
	"github.com/pixelstream/pixelstream/pkg/logging"
	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
	"github.com/pixelstream/pixelstream/services/edge/internal/config"
	"github.com/pixelstream/pixelstream/services/edge/internal/pixel"
	"github.com/pixelstream/pixelstream/services/edge/internal/projects"
	"github.com/pixelstream/pixelstream/services/edge/internal/publish"
	"github.com/pixelstream/pixelstream/services/edge/internal/server"
	"github.com/pixelstream/pixelstream/services/edge/internal/spool"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure: a port in use, an unclean shutdown
	exitConfig  = 2 // invalid options or projects file
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, stop, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// listening, when set (by tests), learns the bound addresses.
var listening func(public, admin string)

// run starts the edge and blocks until ctx is done, then shuts down in
// order. unsignal restores default signal handling once shutdown starts, so
// a second SIGTERM or Ctrl-C ends the process at once.
func run(ctx context.Context, unsignal func(), args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, set, err := config.Load(args, getenv, stderr)
	switch {
	case errors.Is(err, pkgconfig.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return exitConfig
	case cfg.PrintOptions:
		fmt.Fprint(stdout, set.Markdown())
		return exitOK
	}
	log, err := logging.New("edge", cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "edge: %v\n", err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("instance", cfg.Instance))

	e, code := start(cfg, log)
	if code != exitOK {
		return code
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("drain_delay", cfg.DrainDelay), zap.Duration("timeout", cfg.ShutdownTimeout))
	case err := <-e.served:
		log.Error("server stopped", zap.Error(err))
		code = exitFailure
	}
	unsignal()
	if !e.shutdown(cfg, log) {
		code = exitFailure
	}
	log.Info("edge stopped", zap.Int("exit_code", code))
	return code
}

// edge holds the running parts, for the shutdown sequence.
type edge struct {
	srv    *server.Server
	served chan error
	// serveDone is closed when srv.Serve has returned.
	serveDone chan struct{}
	pub       *publish.Publisher
	sink      *publish.KafkaSink
	spool     *spool.Spool // nil without one
	admin     *admin.Server
	reload    context.CancelFunc
	reloaded  chan struct{}
}

// start builds and starts everything. On failure it undoes what it started
// and returns the exit code.
func start(cfg *config.Config, log *zap.Logger) (*edge, int) {
	var undo []func()
	fail := func(code int, what string, err error) (*edge, int) {
		log.Error(what, zap.Error(err))
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, code
	}
	bg := context.Background()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	keys, err := projects.NewRegistry(cfg.ProjectsFile, cfg.StaticKeys(), reg, log)
	if err != nil {
		return fail(exitConfig, "cannot load projects", err)
	}
	sink, err := publish.NewKafkaSink(publish.KafkaConfig{
		Brokers:      cfg.KafkaBrokers,
		Topic:        cfg.RawTopic,
		ClientID:     "pixelstream-edge",
		Compression:  cfg.Compression(),
		MaxAttempts:  cfg.KafkaMaxAttempts,
		WriteTimeout: cfg.KafkaWriteTimeout,
		Log:          log,
	})
	if err != nil {
		return fail(exitConfig, "cannot create the Kafka sink", err)
	}
	undo = append(undo, func() { _ = sink.Close(bg) })
	var sp *spool.Spool
	var spoolIface publish.Spool // stays a nil interface without a spool
	if cfg.SpoolMaxBytes > 0 {
		sp, err = spool.Open(spool.Config{
			Dir:          cfg.SpoolDir,
			MaxBytes:     cfg.SpoolMaxBytes,
			SyncEvery:    cfg.SpoolSyncEvery,
			SyncInterval: cfg.SpoolSyncInterval,
			Log:          log,
		})
		if err != nil {
			return fail(exitFailure, "cannot open the spool (set -spool-dir, or -instance when two edges share a host)", err)
		}
		undo = append(undo, func() { _ = sp.Close() })
		spoolIface = sp
	}
	pub, err := publish.New(publish.Config{
		Sink:       sink,
		Spool:      spoolIface,
		QueueSize:  cfg.QueueSize,
		Workers:    cfg.PublishWorkers,
		BatchSize:  cfg.PublishBatchSize,
		Linger:     cfg.PublishLinger,
		Registerer: reg,
		Log:        log,
	})
	if err != nil {
		return fail(exitFailure, "cannot start the publisher", err)
	}
	undo = append(undo, func() { _ = pub.Close(bg) })

	handler, err := pixel.New(pixel.Config{
		Keys:       keys,
		ClientIP:   clientip.New(cfg.TrustedPrefixes()),
		Queue:      pub,
		Instance:   cfg.Instance,
		RateLimit:  cfg.RateLimit,
		RateBurst:  cfg.RateBurst,
		Registerer: reg,
	})
	if err != nil {
		return fail(exitFailure, "cannot create the pixel handler", err)
	}
	// With a spool the edge does its job while Kafka is down: it is ready
	// as long as the spool can take hits. Without one, Kafka decides.
	ready := &admin.Readiness{}
	if sp != nil {
		ready.Add("spool", sp.Full)
	} else {
		ready.Add("kafka", sink.Ready)
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pixelstream_edge_kafka_ready",
		Help: "1 while a Kafka write was acknowledged or a broker answered metadata for the topic within the readiness window, else 0.",
	}, func() float64 {
		if sink.Ready() == nil {
			return 1
		}
		return 0
	}))
	srv, err := server.New(server.Config{
		ReadTimeout:    cfg.ReadTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxConns:       cfg.MaxConns,
		DrainDelay:     cfg.DrainDelay,
		Readiness:      ready,
		WriteError:     pixel.WriteGIF,
		Registerer:     reg,
		Log:            log,
	}, handler.Handle)
	if err != nil {
		return fail(exitFailure, "cannot create the server", err)
	}
	adminSrv, err := admin.Start(cfg.AdminAddr, ready, reg)
	if err != nil {
		return fail(exitFailure, "cannot start the admin server", err)
	}
	undo = append(undo, func() { _ = adminSrv.Shutdown(bg) })
	// No TCP keep-alive probes: -idle-timeout already closes idle
	// connections, and enabling them costs four setsockopt calls per
	// accepted connection (6 % of the edge's CPU with a connection per hit).
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(bg, "tcp", cfg.Addr)
	if err != nil {
		return fail(exitFailure, "cannot listen", err)
	}

	e := &edge{srv: srv, served: make(chan error, 1), serveDone: make(chan struct{}), pub: pub, sink: sink,
		spool: sp, admin: adminSrv, reloaded: make(chan struct{})}
	go func() {
		defer close(e.serveDone)
		e.served <- srv.Serve(ln)
	}()
	var reloadCtx context.Context
	reloadCtx, e.reload = context.WithCancel(bg)
	go func() {
		defer close(e.reloaded)
		keys.Run(reloadCtx, cfg.ProjectsReload)
	}()
	log.Info("edge started", zap.String("addr", ln.Addr().String()), zap.String("admin_addr", adminSrv.Addr()),
		zap.Strings("kafka_brokers", cfg.KafkaBrokers), zap.String("topic", cfg.RawTopic),
		zap.Int("projects", keys.Current().Projects()), zap.Int("keys", keys.Current().Keys()),
		zap.String("spool_dir", spoolDir(cfg)), zap.Int64("spool_bytes", spoolBytes(sp)), zap.Float64("rate_limit", cfg.RateLimit))
	if listening != nil {
		listening(ln.Addr().String(), adminSrv.Addr())
	}
	return e, exitOK
}

func spoolDir(cfg *config.Config) string {
	if cfg.SpoolMaxBytes <= 0 {
		return "(none)"
	}
	return cfg.SpoolDir
}

func spoolBytes(sp *spool.Spool) int64 {
	if sp == nil {
		return 0
	}
	return sp.Bytes()
}

// shutdown runs readiness 503 → drain delay → stop accepting and finish
// in-flight requests → publish or spool the queue → close the spool → close
// the Kafka writer, all within one deadline, so a stuck broker cannot hold
// the process past it. It reports whether every step finished cleanly.
func (e *edge) shutdown(cfg *config.Config, log *zap.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainDelay+cfg.ShutdownTimeout)
	defer cancel()
	clean := true
	step := func(name string, err error) {
		if err != nil {
			log.Error("shutdown: "+name, zap.Error(err))
			clean = false
		}
	}
	step("http server", e.srv.Shutdown(ctx))
	select {
	case <-e.serveDone:
	case <-ctx.Done():
		step("http server", fmt.Errorf("still serving at the shutdown deadline: %w", ctx.Err()))
	}
	e.reload()
	<-e.reloaded
	step("publisher flush", e.pub.Close(ctx))
	if e.spool != nil {
		step("spool", e.spool.Close())
		if n := e.spool.Bytes(); n > 0 {
			log.Info("spool keeps hits for the next start", zap.Int64("spool_bytes", n))
		}
	}
	step("kafka writer", e.sink.Close(ctx))
	step("admin server", e.admin.Shutdown(ctx))
	return clean
}
