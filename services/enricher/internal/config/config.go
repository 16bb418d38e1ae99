// Package config holds the enricher's options: defaults beside each field,
// one flag and one environment variable per option, and Validate.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/pixelstream/pixelstream/pkg/config"
	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkawriter"
	"github.com/segmentio/kafka-go"
)

// Config is everything the enricher can be told.
type Config struct {
	Brokers         []string
	RawTopic        string
	EnrichedTopic   string
	DeadletterTopic string
	GroupID         string
	AdminAddr       string

	GeoIPCity      string
	GeoIPASN       string
	GeoIPReload    time.Duration
	UARegexes      string
	UACacheSize    int
	BatchSize      int
	Compression    string
	BatchLinger    time.Duration
	CommitInterval time.Duration
	EnrichWorkers  int
	RetryInitial   time.Duration
	RetryMax       time.Duration
	SessionTimeout time.Duration
	ShutdownTime   time.Duration
	LogLevel       string

	DefaultIPMode         string
	SaltTopic             string
	SaltReplication       int
	SaltPrepareAhead      time.Duration
	VisitorSessionTimeout time.Duration
	VisitorSessionMax     int
	DedupWindow           time.Duration
	DedupMaxIDs           int
	MemoryLimit           int64
}

// Declare registers every option on s, with its default.
func (c *Config) Declare(s *config.Set) {
	s.List(&c.Brokers, "kafka-brokers", "KAFKA_BROKERS", nil, "Kafka bootstrap brokers, comma-separated host:port (required)")
	s.String(&c.RawTopic, "raw-topic", "RAW_TOPIC", "hits.raw", "topic of raw hits to consume")
	s.String(&c.EnrichedTopic, "enriched-topic", "ENRICHED_TOPIC", "pageviews.enriched", "topic the enriched JSON records are written to")
	s.String(&c.DeadletterTopic, "deadletter-topic", "DEADLETTER_TOPIC", "hits.deadletter", "topic for records that cannot be enriched (original bytes, reason in headers)")
	s.String(&c.GroupID, "group-id", "ENRICHER_GROUP_ID", "pixelstream-enricher", "Kafka consumer group; every enricher replica uses the same one")
	s.String(&c.AdminAddr, "admin-addr", "ENRICHER_ADMIN_ADDR", ":9101", "address of /healthz, /readyz, /metrics")
	s.String(&c.GeoIPCity, "geoip-city", "ENRICHER_GEOIP_CITY", "", "path of a MaxMind City .mmdb (GeoLite2/GeoIP2/DB-IP); empty disables geo")
	s.String(&c.GeoIPASN, "geoip-asn", "ENRICHER_GEOIP_ASN", "", "optional path of a MaxMind ASN .mmdb")
	s.Duration(&c.GeoIPReload, "geoip-reload-interval", "ENRICHER_GEOIP_RELOAD_INTERVAL", 30*time.Second, "how often to check the .mmdb files for changes and reload them")
	s.String(&c.UARegexes, "ua-regexes", "ENRICHER_UA_REGEXES", "", "path of a uap-core regexes.yaml newer than the embedded one; empty uses the embedded")
	s.Int(&c.UACacheSize, "ua-cache-size", "ENRICHER_UA_CACHE_SIZE", 100000, "entries in the parsed User-Agent cache")
	// lz4 is the default. Snappy's fast encoder (pkg/kafkawriter) costs the
	// enricher less CPU per event, but in drains sharing two cores with the
	// broker, the broker then took 0.52-0.53 cores against 0.43-0.45 (it
	// decompresses every batch to validate it) and lz4 drained as fast or
	// faster (docs/performance.md). zstd halves the stored bytes for
	// ~2.5× lz4's CPU.
	s.String(&c.Compression, "kafka-compression", "ENRICHER_KAFKA_COMPRESSION", "lz4", "compression of the enriched and dead-letter record batches: "+kafkawriter.CompressionNames)
	s.Int(&c.BatchSize, "batch-size", "ENRICHER_BATCH_SIZE", 2000, "records per fetch-enrich-produce-commit cycle")
	s.Duration(&c.BatchLinger, "batch-linger", "ENRICHER_BATCH_LINGER", 5*time.Millisecond, "wait for more records after the first of a batch; past it a batch keeps filling (up to -batch-size) while the previous one is still being produced")
	s.Duration(&c.CommitInterval, "commit-interval", "ENRICHER_COMMIT_INTERVAL", 100*time.Millisecond, "least time between two offset commits; produced records are readable at once, and after a crash or rebalance up to this much more is read again (0: commit after every batch)")
	s.Int(&c.EnrichWorkers, "enrich-workers", "ENRICHER_WORKERS", 0, "goroutines enriching a batch in parallel (0: one per CPU, GOMAXPROCS); the ordered steps (dedup, sessions) always run in one")
	s.Duration(&c.RetryInitial, "retry-initial", "ENRICHER_RETRY_INITIAL", 100*time.Millisecond, "first backoff when producing or committing fails")
	s.Duration(&c.RetryMax, "retry-max", "ENRICHER_RETRY_MAX", 10*time.Second, "backoff cap; the enricher retries until the broker is back, never skipping a record")
	s.Duration(&c.SessionTimeout, "group-session-timeout", "ENRICHER_GROUP_SESSION_TIMEOUT", 10*time.Second, "consumer group session timeout: how fast a dead member's partitions move")
	s.Duration(&c.ShutdownTime, "shutdown-timeout", "ENRICHER_SHUTDOWN_TIMEOUT", 30*time.Second, "how long the batch in hand may take to finish on SIGTERM")
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.DefaultIPMode, "default-ip-mode", "ENRICHER_DEFAULT_IP_MODE", "truncate", "IP handling for hits whose project sets none: full, truncate (IPv4 /24, IPv6 /48) or drop")
	s.String(&c.SaltTopic, "salt-topic", "ENRICHER_SALT_TOPIC", "pixelstream.salts", "single-partition topic carrying the daily visitor-id salts (created if missing, 48 h retention)")
	s.Int(&c.SaltReplication, "salt-replication-factor", "ENRICHER_SALT_REPLICATION_FACTOR", -1, "replication factor when creating the salt topic (-1: broker default)")
	s.Duration(&c.SaltPrepareAhead, "salt-prepare-ahead", "ENRICHER_SALT_PREPARE_AHEAD", 10*time.Minute, "prepare the next UTC day's salt this long before midnight")
	s.Duration(&c.VisitorSessionTimeout, "visitor-session-timeout", "ENRICHER_VISITOR_SESSION_TIMEOUT", 30*time.Minute, "inactivity that ends a visitor's session")
	s.Int(&c.VisitorSessionMax, "visitor-session-max", "ENRICHER_VISITOR_SESSION_MAX", 1000000, "open sessions kept in memory (about 130 B each); the least recently active are evicted beyond it")
	s.Duration(&c.DedupWindow, "dedup-window", "ENRICHER_DEDUP_WINDOW", 10*time.Minute, "how long event ids are remembered to drop duplicates")
	s.Int(&c.DedupMaxIDs, "dedup-max-ids", "ENRICHER_DEDUP_MAX_IDS", 1000000, "event ids remembered at most (32 B each, allocated at start)")
	s.Int64(&c.MemoryLimit, "memory-limit-bytes", "ENRICHER_MEMORY_LIMIT_BYTES", 200<<20, "soft limit for the Go heap (runtime/debug.SetMemoryLimit): the GC works harder near it instead of doubling the heap; 0 leaves GOMEMLIMIT/the default")
}

// Named validation errors.
var (
	ErrNoBrokers = errors.New("no Kafka brokers: set -kafka-brokers or KAFKA_BROKERS")
	ErrNoTopic   = errors.New("raw, enriched and dead-letter topics must be set and distinct")
	ErrNoGroup   = errors.New("group id must be set")
	ErrBatch     = errors.New("batch size must be between 1 and 100000")
	ErrCodec     = errors.New("kafka-compression must be " + kafkawriter.CompressionNames)
	ErrDuration  = errors.New("durations must be positive (-commit-interval may be 0)")
	ErrUACache   = errors.New("ua-cache-size must be at least 1")
	ErrWorkers   = errors.New("enrich-workers must be between 0 (one per CPU) and 256")
	ErrIPMode    = errors.New(`default-ip-mode must be "full", "truncate" or "drop"`)
	ErrVisitor   = errors.New("salt topic, session timeout, session cap, dedup window and dedup cap must be set and positive")
)

// Validate reports the first invalid option.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return ErrNoBrokers
	case c.RawTopic == "" || c.EnrichedTopic == "" || c.DeadletterTopic == "" ||
		c.RawTopic == c.EnrichedTopic || c.RawTopic == c.DeadletterTopic || c.EnrichedTopic == c.DeadletterTopic:
		return ErrNoTopic
	case c.GroupID == "":
		return ErrNoGroup
	case c.BatchSize < 1 || c.BatchSize > 100000:
		return fmt.Errorf("%w: got %d", ErrBatch, c.BatchSize)
	case !validCodec(c.Compression):
		return fmt.Errorf("%w: got %q", ErrCodec, c.Compression)
	case c.BatchLinger <= 0 || c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial || c.ShutdownTime <= 0 ||
		c.GeoIPReload <= 0 || c.SessionTimeout <= 0 || c.CommitInterval < 0:
		return ErrDuration
	case c.UACacheSize < 1:
		return ErrUACache
	case c.EnrichWorkers < 0 || c.EnrichWorkers > 256:
		return fmt.Errorf("%w: got %d", ErrWorkers, c.EnrichWorkers)
	case !hit.ValidIPMode(c.DefaultIPMode):
		return fmt.Errorf("%w: got %q", ErrIPMode, c.DefaultIPMode)
	case c.SaltTopic == "" || c.VisitorSessionTimeout <= 0 || c.VisitorSessionMax < 1 || c.DedupWindow <= 0 ||
		c.DedupMaxIDs < 1 || c.SaltPrepareAhead <= 0:
		return ErrVisitor
	}
	return nil
}

func validCodec(name string) bool {
	_, ok := kafkawriter.ParseCompression(name)
	return ok
}

// Codec returns the kafka-go codec -kafka-compression names (after
// Validate).
func (c *Config) Codec() kafka.Compression {
	codec, _ := kafkawriter.ParseCompression(c.Compression)
	return codec
}
