package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/pixelstream/pixelstream/pkg/kafkawriter"
)

// KafkaConfig configures the Kafka sink.
type KafkaConfig struct {
	Brokers []string
	Topic   string
	// ClientID names this producer in broker logs and quotas.
	ClientID string
	// Compression codec for record batches.
	Compression kafka.Compression
	// MaxAttempts bounds the tries of a batch at two levels: the writer
	// retries each produce request that fails with a temporary error
	// (backing off n² × WriteBackoffMin, at most WriteBackoffMax; defaults
	// 100ms and 1s), and Write retries a call that failed before anything
	// was sent (no metadata: broker unreachable), doubling the backoff.
	MaxAttempts     int
	WriteBackoffMin time.Duration
	WriteBackoffMax time.Duration
	// WriteTimeout bounds one produce round trip.
	WriteTimeout time.Duration
	// ProbeInterval is how often an idle sink asks a broker for the topic's
	// metadata to keep readiness honest; readiness fails after three
	// intervals without an acknowledged write or a metadata answer.
	ProbeInterval time.Duration
	Log           *zap.Logger
}

// KafkaSink writes batches to one topic through a single long-lived
// pkg/kafkawriter Writer: a worker's batch goes out as it is, one produce
// request per partition leader. (kafka-go's Writer re-batched it per
// partition: 70 % of the edge's allocated bytes, and a linger on every hit.)
type KafkaSink struct {
	w         *kafkawriter.Writer
	transport *kafka.Transport
	cfg       KafkaConfig
	log       *zap.Logger

	lastOK      atomic.Int64 // unix nanos of the last acknowledged write or metadata answer
	lastAttempt atomic.Int64 // unix nanos of the last write attempt
	lastErr     atomic.Pointer[errorBox]

	stopProbe context.CancelFunc
	probeDone chan struct{}
	closeOnce sync.Once
}

type errorBox struct{ err error }

// ErrNoBrokers is returned by NewKafkaSink without broker addresses.
var ErrNoBrokers = errors.New("publish: no Kafka brokers")

// NewKafkaSink builds the writer and starts the readiness probe.
func NewKafkaSink(cfg KafkaConfig) (*KafkaSink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, ErrNoBrokers
	}
	if cfg.Topic == "" {
		return nil, errors.New("publish: no Kafka topic")
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.WriteBackoffMin <= 0 {
		cfg.WriteBackoffMin = 100 * time.Millisecond // kafka-go's default
	}
	if cfg.WriteBackoffMax < cfg.WriteBackoffMin {
		cfg.WriteBackoffMax = max(time.Second, cfg.WriteBackoffMin)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	// An explicit transport, rather than kafka-go's shared default, so
	// Close can release its connections and goroutines.
	transport := &kafka.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: 5 * time.Second,
		IdleTimeout: 60 * time.Second,
		MetadataTTL: 10 * time.Second,
	}
	w, err := kafkawriter.New(kafkawriter.Config{
		Brokers:    cfg.Brokers,
		Topic:      cfg.Topic,
		Transport:  transport,
		BackoffMin: cfg.WriteBackoffMin,
		BackoffMax: cfg.WriteBackoffMax,
		// kafkawriter's default too; never RequireNone, under which a hit
		// the broker lost would still count as published.
		RequiredAcks: kafka.RequireAll,
		Compression:  cfg.Compression,
		MaxAttempts:  cfg.MaxAttempts,
		WriteTimeout: cfg.WriteTimeout,
	})
	if err != nil {
		return nil, err
	}
	s := &KafkaSink{
		w:         w,
		transport: transport,
		cfg:       cfg,
		log:       cfg.Log,
		probeDone: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopProbe = cancel
	go s.probeLoop(ctx)
	return s, nil
}

// Write implements Sink. A failure before anything was sent (no metadata:
// broker unreachable, unknown topic) is retried up to MaxAttempts, as the
// writer retries its produce requests; such a retry cannot duplicate
// records.
func (s *KafkaSink) Write(ctx context.Context, msgs []kafka.Message) error {
	attempts := max(s.cfg.MaxAttempts, 1)
	backoff := s.cfg.WriteBackoffMin
	for attempt := 1; ; attempt++ {
		s.lastAttempt.Store(time.Now().UnixNano())
		err := s.w.WriteMessages(ctx, msgs...)
		var werrs kafka.WriteErrors
		switch {
		case err == nil:
			s.lastOK.Store(time.Now().UnixNano())
			return nil
		case errors.As(err, &werrs):
			if werrs.Count() < len(msgs) {
				s.lastOK.Store(time.Now().UnixNano())
			}
			s.setErr(firstError(err))
			return err
		}
		s.setErr(err)
		if attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.WriteBackoffMax)
	}
}

// retryable reports whether a whole-call error from WriteMessages (which
// happens before any produce request, so nothing can have been written) may
// clear up: network and metadata errors may; a closed writer, a cancelled
// context, an oversized message or a permanent Kafka error (pkg/errclass)
// will not.
func retryable(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	switch {
	case errors.Is(err, io.ErrClosedPipe), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &tooLarge):
		return false
	}
	return errclass.IsRetryable(err)
}

func (s *KafkaSink) setErr(err error) { s.lastErr.Store(&errorBox{err}) }

// Ready reports whether the sink can publish: a write was acknowledged, or a
// broker answered metadata for the topic, within the last three probe
// intervals. During an outage with traffic, failing writes keep the probe
// quiet and readiness fails after the window; once idle, the probe brings
// readiness back as soon as a broker answers.
func (s *KafkaSink) Ready() error {
	window := 3 * s.cfg.ProbeInterval
	last := s.lastOK.Load()
	if last != 0 && time.Since(time.Unix(0, last)) <= window {
		return nil
	}
	var cause error = errors.New("no answer yet")
	if b := s.lastErr.Load(); b != nil {
		cause = b.err
	}
	return fmt.Errorf("no acknowledged Kafka write or metadata answer for topic %q within %s: %w", s.cfg.Topic, window, cause)
}

// probeLoop asks for metadata right away and then whenever no write was
// attempted for a probe interval.
func (s *KafkaSink) probeLoop(ctx context.Context) {
	defer close(s.probeDone)
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		if time.Since(time.Unix(0, s.lastAttempt.Load())) >= s.cfg.ProbeInterval {
			if err := s.probe(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.setErr(err)
				s.log.Debug("kafka metadata probe failed", zap.Error(err))
			} else {
				s.lastOK.Store(time.Now().UnixNano())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe returns nil when a broker answers metadata that lists the topic
// with partitions. It uses a fresh transport each time: the writer's
// transport answers metadata from a cache that keeps the last known layout
// through an outage, so asking it would prove nothing. It does not use
// kafka-go's Conn.ReadPartitions either, which requests auto-creation:
// Apache Kafka enables auto.create.topics.enable by default, and a probe
// must not create the topic with broker defaults.
func (s *KafkaSink) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.ProbeInterval, 5*time.Second))
	defer cancel()
	t := &kafka.Transport{
		ClientID:       s.cfg.ClientID,
		DialTimeout:    5 * time.Second,
		MetadataTopics: []string{s.cfg.Topic},
	}
	defer t.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(s.cfg.Brokers...), Transport: t}
	resp, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.Topic}})
	if err != nil {
		return fmt.Errorf("metadata for topic %q: %w", s.cfg.Topic, err)
	}
	for _, tp := range resp.Topics {
		if tp.Name != s.cfg.Topic {
			continue
		}
		if tp.Error != nil {
			return fmt.Errorf("metadata for topic %q: %w", s.cfg.Topic, tp.Error)
		}
		if len(tp.Partitions) == 0 {
			break
		}
		return nil
	}
	return fmt.Errorf("metadata for topic %q: %w", s.cfg.Topic, kafka.UnknownTopicOrPartition)
}

// Close stops the probe and closes the writer, waiting at most until ctx is
// done: the writer's Close waits for writes in flight, which retry for a
// while when a broker is unreachable. On timeout the writer is abandoned
// (the process is about to exit) and ctx's error is returned. Close the
// Publisher first, so no write starts during Close.
func (s *KafkaSink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.stopProbe()
		<-s.probeDone
		done := make(chan error, 1)
		go func() {
			err := s.w.Close()
			// Also after an abandoned Close: the transport's goroutines end
			// once the writer finally lets go.
			s.transport.CloseIdleConnections()
			done <- err
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("closing the Kafka writer: %w", ctx.Err())
		}
	})
	return err
}
