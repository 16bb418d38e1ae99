// Package app wires the enricher: Kafka reader and writer, the enrichment
// steps, the pipeline stages with their retry and metrics decorators, the
// admin endpoints, and the ordered shutdown.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/pixelstream/pixelstream/pkg/admin"
	"github.com/pixelstream/pixelstream/pkg/kafkawriter"
	"github.com/pixelstream/pixelstream/services/enricher/internal/classify"
	"github.com/pixelstream/pixelstream/services/enricher/internal/commit"
	"github.com/pixelstream/pixelstream/services/enricher/internal/config"
	"github.com/pixelstream/pixelstream/services/enricher/internal/consumer"
	"github.com/pixelstream/pixelstream/services/enricher/internal/dedup"
	"github.com/pixelstream/pixelstream/services/enricher/internal/device"
	"github.com/pixelstream/pixelstream/services/enricher/internal/enrich"
	"github.com/pixelstream/pixelstream/services/enricher/internal/geo"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/pixelstream/pixelstream/services/enricher/internal/produce"
	"github.com/pixelstream/pixelstream/services/enricher/internal/runner"
	"github.com/pixelstream/pixelstream/services/enricher/internal/session"
	"github.com/pixelstream/pixelstream/services/enricher/internal/visitor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Run runs the enricher until ctx ends (SIGTERM), then drains in order:
// readiness goes 503, fetching stops, the batch in hand is produced and
// committed (bounded by cfg.ShutdownTime), the group is left, the writer
// closed.
func Run(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ready admin.Readiness

	ordered, newSteps, cleanup, err := buildSteps(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer cleanup()

	// pkg/kafkawriter rather than kafka-go's Writer: the runner already
	// batches (see that package for what the second batching cost).
	writer, err := kafkawriter.New(kafkawriter.Config{
		Brokers:      cfg.Brokers,
		RequiredAcks: kafka.RequireAll,
		Compression:  cfg.Codec(),
		MaxAttempts:  3, // our retry decorator retries beyond this, without a limit
		WriteTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_enricher_retries_total",
		Help: "Retried stage attempts (broker unavailable, leader moved, commit failed).",
	}, []string{"stage"})
	fetchRetry := func(err error, wait time.Duration) {
		retries.WithLabelValues("fetch").Inc()
		log.Warn("fetch failed, retrying", zap.Duration("wait", wait), zap.Error(err))
	}
	reader, err := consumer.New(consumer.Config{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		Topic:             cfg.RawTopic,
		QueueCapacity:     2 * cfg.BatchSize,
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.SessionTimeout / 3,
		RebalanceTimeout:  cfg.SessionTimeout,
		OnRetry:           fetchRetry,
		Log:               log,
	})
	if err != nil {
		_ = writer.Close()
		return err
	}

	stageMetrics := pipeline.NewStageMetrics(reg)
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pixelstream_enricher_dropped_total",
		Help: "Records lost for good, by reason (a dead letter the broker refused). Should stay 0.",
	}, []string{"reason"})
	deadlettered := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pixelstream_enricher_produce_deadlettered_total",
		Help: "Enriched records the broker refused permanently, sent to the dead-letter topic instead.",
	})
	reg.MustRegister(dropped, deadlettered, retries, newReaderCollector(reader))

	health := &produceHealth{}
	ready.Add("kafka", health.check)

	backoff := pipeline.Backoff{Initial: cfg.RetryInitial, Max: cfg.RetryMax}
	retryLog := func(stage string) func(error, int, time.Duration) {
		c := retries.WithLabelValues(stage)
		return func(err error, attempt int, wait time.Duration) {
			c.Inc()
			health.failed(err)
			log.Warn("stage failed, retrying", zap.String("stage", stage), zap.Int("attempt", attempt),
				zap.Duration("wait", wait), zap.Error(err))
		}
	}
	enrichStage := &enrich.Stage{
		Ordered:         ordered,
		NewSteps:        newSteps,
		Workers:         cmp.Or(cfg.EnrichWorkers, runtime.GOMAXPROCS(0)),
		EnrichedTopic:   cfg.EnrichedTopic,
		DeadletterTopic: cfg.DeadletterTopic,
		Log:             log,
		Records:         enrich.NewRecordsCounter(reg),
	}
	produceStage := &produce.Stage{
		W:               writer,
		DeadletterTopic: cfg.DeadletterTopic,
		MaxRecordBytes:  int(writer.BatchBytes()),
		Log:             log,
		Dropped:         dropped.WithLabelValues("deadletter_refused"),
		Deadlettered:    deadlettered,
	}
	age := pipeline.NewEventAge(reg)
	deliver := pipeline.Chain(
		pipeline.WithRetry(pipeline.WithMetrics(produceStage, "produce", stageMetrics), backoff, retryLog("produce")),
		pipeline.ObserveAge(age, "produced"),
		pipeline.StageFunc(func(context.Context, *pipeline.Batch) error { health.ok(); return nil }),
	)
	run := &runner.Runner{
		Source:  reader,
		Prepare: pipeline.Chain(pipeline.ObserveAge(age, "fetched"), pipeline.WithMetrics(enrichStage, "enrich", stageMetrics)),
		Deliver: deliver,
		// Committed in a goroutine of its own, so the next batch is
		// produced during this one's commit round trip (runner's doc).
		Commit:          pipeline.WithRetry(pipeline.WithMetrics(commit.Stage{C: reader}, "commit", stageMetrics), backoff, retryLog("commit")),
		CommitInterval:  cfg.CommitInterval,
		MaxBatch:        cfg.BatchSize,
		Linger:          cfg.BatchLinger,
		InFlight:        2,
		FetchBackoff:    cfg.RetryInitial,
		FetchBackoffMax: cfg.RetryMax,
		OnFetchError:    fetchRetry,
	}

	adm, err := admin.Start(cfg.AdminAddr, &ready, reg)
	if err != nil {
		_ = reader.Close()
		return fmt.Errorf("admin listener %s: %w", cfg.AdminAddr, err)
	}
	log.Info("enricher started", zap.Strings("brokers", cfg.Brokers), zap.String("raw_topic", cfg.RawTopic),
		zap.String("enriched_topic", cfg.EnrichedTopic), zap.String("group", cfg.GroupID), zap.String("admin", adm.Addr()))

	// workCtx outlives ctx by the shutdown budget, so the batch in hand is
	// produced and committed after SIGTERM instead of being abandoned.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		ready.Drain()
		log.Info("shutting down: finishing the batch in hand", zap.Duration("budget", cfg.ShutdownTime))
		time.AfterFunc(cfg.ShutdownTime, cancelWork)
	})
	defer stop()

	runErr := run.Run(ctx, workCtx)
	ready.Drain()

	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{runErr}
	errs = append(errs, closeBounded(closeCtx, "reader", reader.Close))
	errs = append(errs, closeBounded(closeCtx, "writer", writer.Close))
	errs = append(errs, adm.Shutdown(closeCtx))
	err = errors.Join(errs...)
	if err != nil {
		log.Error("enricher stopped with error", zap.Error(err))
	} else {
		log.Info("enricher stopped cleanly")
	}
	return err
}

// closeBounded runs fn but gives up waiting when ctx ends: kafka-go's Close
// can block for minutes while a broker is unreachable.
func closeBounded(ctx context.Context, name string, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("close %s: %w", name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close %s: %w", name, ctx.Err())
	}
}

// buildSteps returns the ordered steps (those that keep state across
// records), a constructor of one worker's chain of per-record steps, and a
// cleanup. The parsers and the geo resolver behind the chains are safe for
// concurrent use; each chain has its own Shared.
func buildSteps(ctx context.Context, cfg *config.Config, log *zap.Logger, reg prometheus.Registerer) ([]enrich.Step, func() []enrich.Step, func(), error) {
	salts, err := visitor.NewSaltStore(visitor.SaltConfig{
		Brokers: cfg.Brokers, Topic: cfg.SaltTopic, ReplicationFactor: cfg.SaltReplication,
		PrepareAhead: cfg.SaltPrepareAhead, Logger: log.Named("salts"),
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("salt store: %w", err)
	}
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	err = salts.Start(startCtx)
	cancelStart()
	if err != nil {
		_ = salts.Close()
		return nil, nil, nil, fmt.Errorf("visitor-id salt of today from topic %s: %w", cfg.SaltTopic, err)
	}
	sessions := session.New(session.Config{Timeout: cfg.VisitorSessionTimeout, MaxSessions: cfg.VisitorSessionMax})
	window := dedup.New(dedup.Config{Window: cfg.DedupWindow, MaxIDs: cfg.DedupMaxIDs})
	reg.MustRegister(salts.Collector(), sessions.Collector(), window.Collector())
	// HonourSignals first, so nothing about such a visitor is kept even in
	// memory; Dedup before Visitor, so a duplicate does not advance a session.
	ordered := []enrich.Step{enrich.HonourSignals, enrich.Dedup(window), enrich.Visitor(salts, sessions)}
	cleanup := func() { _ = salts.Close() }
	var res *geo.Resolver
	if cfg.GeoIPCity != "" {
		res, err = geo.Open(cfg.GeoIPCity, cfg.GeoIPASN)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("geo database: %w", err)
		}
		wctx, cancel := context.WithCancel(ctx)
		go res.Watch(wctx, cfg.GeoIPReload, func(msg string, err error) {
			if err != nil {
				log.Warn(msg, zap.Error(err))
			} else {
				log.Info(msg)
			}
		})
		cleanup = func() { cancel(); _ = res.Close(); _ = salts.Close() }
		reg.MustRegister(newGeoCollector(res))
		log.Info("geo enabled", zap.String("city_db", cfg.GeoIPCity), zap.String("asn_db", cfg.GeoIPASN))
	} else {
		log.Warn("geo disabled: no City database configured (-geoip-city / ENRICHER_GEOIP_CITY); geo fields stay empty")
	}
	ua, err := device.New(cfg.UARegexes, cfg.UACacheSize)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("user-agent parser: %w", err)
	}
	agents, err := classify.NewAgentClassifier(classify.AgentConfig{})
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("agent classifier: %w", err)
	}
	classify.Preload()
	reg.MustRegister(newUACollector(ua))
	newSteps := func() []enrich.Step {
		sh := &enrich.Shared{}
		steps := []enrich.Step{enrich.Basics, enrich.Campaign(sh)}
		if res != nil {
			steps = append(steps, enrich.Geo(res, sh))
		}
		// IPPolicy last: every step before it may need the full address.
		return append(steps, enrich.Device(ua, sh), enrich.Classify(agents, sh), enrich.IPPolicy(cfg.DefaultIPMode))
	}
	return ordered, newSteps, cleanup, nil
}
