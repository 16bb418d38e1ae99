// Package config declares every option of the edge service in one struct,
// each settable by flag and environment variable through pkg/config, and
// checks them before anything starts.
package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	pkgconfig "github.com/pixelstream/pixelstream/pkg/config"
	"github.com/pixelstream/pixelstream/pkg/kafkawriter"
	"github.com/pixelstream/pixelstream/services/edge/internal/clientip"
	"github.com/pixelstream/pixelstream/services/edge/internal/projects"
)

// Config is the edge's complete configuration. Defaults are declared with
// the options in Bind.
type Config struct {
	// Serving.
	Addr           string        // public listener for pixel requests
	AdminAddr      string        // /healthz, /readyz, /metrics, /debug/pprof
	ReadTimeout    time.Duration // whole request, headers and body
	WriteTimeout   time.Duration // whole response
	IdleTimeout    time.Duration // keep-alive between requests
	MaxHeaderBytes int           // request line plus headers
	MaxBodyBytes   int           // POST body (ignored, but read)
	MaxConns       int           // open client connections

	// Keys and client addresses.
	ProjectsFile   string
	ProjectsReload time.Duration
	Keys           []string // key=project-id pairs
	TrustedProxies []string // CIDR prefixes or addresses
	Instance       string
	RateLimit      float64 // hits per second per API key; 0: off
	RateBurst      int

	// Publishing.
	KafkaBrokers      []string
	RawTopic          string
	QueueSize         int
	PublishWorkers    int
	PublishBatchSize  int
	PublishLinger     time.Duration
	KafkaCompression  string
	KafkaMaxAttempts  int
	KafkaWriteTimeout time.Duration

	// Disk spool.
	SpoolDir          string
	SpoolMaxBytes     int64
	SpoolSyncInterval time.Duration
	SpoolSyncEvery    int64

	// Lifecycle.
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	LogLevel        string
	PrintOptions    bool

	// Derived by Validate.
	trusted     []netip.Prefix
	staticKeys  []projects.Spec
	compression kafka.Compression
}

// Bind declares every option on set, with its flag, environment variable
// and default.
func (c *Config) Bind(set *pkgconfig.Set) {
	set.String(&c.Addr, "addr", "EDGE_ADDR", ":8080", "listen address for pixel requests")
	set.String(&c.AdminAddr, "admin-addr", "EDGE_ADMIN_ADDR", ":9100", "listen address for /healthz, /readyz, /metrics and /debug/pprof")
	set.Duration(&c.ReadTimeout, "read-timeout", "EDGE_READ_TIMEOUT", 5*time.Second, "time allowed to read a whole request")
	set.Duration(&c.WriteTimeout, "write-timeout", "EDGE_WRITE_TIMEOUT", 5*time.Second, "time allowed to write a response")
	set.Duration(&c.IdleTimeout, "idle-timeout", "EDGE_IDLE_TIMEOUT", 75*time.Second, "keep-alive idle time; keep it above the load balancer's idle timeout (often 60s) so the balancer closes first")
	set.Int(&c.MaxHeaderBytes, "max-header-bytes", "EDGE_MAX_HEADER_BYTES", 16384, "longest request line plus headers; longer requests get 414 or 431 (with the GIF)")
	set.Int(&c.MaxBodyBytes, "max-body-bytes", "EDGE_MAX_BODY_BYTES", 8192, "largest POST body read (and ignored); larger bodies get 413")
	set.Int(&c.MaxConns, "max-conns", "EDGE_MAX_CONNS", 10000, "most open client connections (each holds about max-header-bytes + 8 KiB); more get 503 with the GIF and are closed")

	set.String(&c.ProjectsFile, "projects-file", "EDGE_PROJECTS_FILE", "", "YAML or JSON file of projects (id, key or keys, allowed_hosts), reloaded when it changes")
	set.Duration(&c.ProjectsReload, "projects-reload-interval", "EDGE_PROJECTS_RELOAD_INTERVAL", 5*time.Second, "how often the projects file is checked for changes")
	set.List(&c.Keys, "keys", "EDGE_KEYS", nil, "static API keys as key=project-id pairs, comma separated")
	set.List(&c.TrustedProxies, "trusted-proxies", "EDGE_TRUSTED_PROXIES", nil, "CIDR prefixes or addresses of proxies whose X-Forwarded-For is believed, comma separated")
	set.String(&c.Instance, "instance", "EDGE_INSTANCE", "", "edge instance name written into every hit (empty: the host name)")
	set.Float64(&c.RateLimit, "rate-limit", "EDGE_RATE_LIMIT", 0, "hits per second each API key may record (token bucket per key); beyond it 429 with the GIF; 0 = off")
	set.Int(&c.RateBurst, "rate-burst", "EDGE_RATE_BURST", 0, "hits an API key may record at once above -rate-limit (bucket size); 0 = one second's worth")

	set.List(&c.KafkaBrokers, "kafka-brokers", "KAFKA_BROKERS", nil, "Kafka bootstrap brokers host:port, comma separated (required)")
	set.String(&c.RawTopic, "raw-topic", "RAW_TOPIC", "hits.raw", "topic raw hits are published to (must exist)")
	set.Int(&c.QueueSize, "queue-size", "EDGE_QUEUE_SIZE", 8192, "hits waiting for Kafka; when full, hits are dropped and counted, never waited for")
	set.Int(&c.PublishWorkers, "publish-workers", "EDGE_PUBLISH_WORKERS", 4, "most concurrent batch writes to Kafka: one is in flight while the broker keeps up, more only for full batches")
	set.Int(&c.PublishBatchSize, "publish-batch-size", "EDGE_PUBLISH_BATCH_SIZE", 1024, "most hits per batch write (larger batches amortise the per-request cost, at the client and at the brokers)")
	set.Duration(&c.PublishLinger, "publish-linger", "EDGE_PUBLISH_LINGER", 10*time.Millisecond, "how long a publish worker holding a part batch waits for more hits before writing (Kafka's linger.ms): fewer, larger produce requests, which the brokers pay for per request, for a few ms of latency; a part batch also waits for the write in flight; 0 writes what is queued at once when no write is in flight")
	// snappy (s2's fast encoder, pkg/kafkawriter) is the default: on
	// partition batches of the load harness's realistic hits
	// (BenchmarkCompression with PIXELSTREAM_MIX_FILE) it compresses to the
	// same size as LZ4 in two thirds of the time, 0.6 against 1.0 µs per hit
	// at 16 hits per batch, and the broker spends no more on it. LZ4 led only
	// on near-identical synthetic records. zstd compresses best at several
	// times the CPU, for bandwidth-bound links.
	set.String(&c.KafkaCompression, "kafka-compression", "EDGE_KAFKA_COMPRESSION", "snappy", "record batch compression: "+kafkawriter.CompressionNames)
	set.Int(&c.KafkaMaxAttempts, "kafka-max-attempts", "EDGE_KAFKA_MAX_ATTEMPTS", 3, "attempts per batch before its hits count as failed")
	set.Duration(&c.KafkaWriteTimeout, "kafka-write-timeout", "EDGE_KAFKA_WRITE_TIMEOUT", 10*time.Second, "time allowed for one produce request")

	set.String(&c.SpoolDir, "spool-dir", "EDGE_SPOOL_DIR", "", "directory of the disk spool that keeps hits while Kafka refuses or is slow (created 0700; empty: $XDG_STATE_HOME, else ~/.local/state, else /var/lib, then /pixelstream/edge/INSTANCE/spool)")
	set.Int64(&c.SpoolMaxBytes, "spool-max-bytes", "EDGE_SPOOL_MAX_BYTES", 1<<30, "most bytes of hits the spool holds; beyond it hits are dropped and /readyz fails; 0 = no spool (hits Kafka refuses are dropped)")
	set.Duration(&c.SpoolSyncInterval, "spool-sync-interval", "EDGE_SPOOL_SYNC_INTERVAL", time.Second, "fsync the spool this often while it is written or read (a power loss can lose what came since)")
	set.Int64(&c.SpoolSyncEvery, "spool-sync-every", "EDGE_SPOOL_SYNC_EVERY", 1000, "also fsync the spool after this many records written plus read")

	set.Duration(&c.DrainDelay, "shutdown-drain-delay", "EDGE_DRAIN_DELAY", 5*time.Second, "on SIGTERM, time between /readyz turning 503 and the listener closing, so load balancers stop sending first")
	set.Duration(&c.ShutdownTimeout, "shutdown-timeout", "EDGE_SHUTDOWN_TIMEOUT", 20*time.Second, "after the drain delay, time allowed to finish requests, flush queued hits and close the Kafka writer")
	set.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	set.Bool(&c.PrintOptions, "print-options", "", false, "print this option list as a Markdown table and exit")
}

// Named validation errors; Validate wraps them with the offending value.
var (
	ErrNoBrokers      = errors.New("no Kafka brokers: set -kafka-brokers or KAFKA_BROKERS")
	ErrNoKeys         = errors.New("no API keys: set -projects-file (EDGE_PROJECTS_FILE) or -keys (EDGE_KEYS)")
	ErrBadKeys        = errors.New("invalid -keys (EDGE_KEYS)")
	ErrBadProxy       = errors.New("invalid -trusted-proxies (EDGE_TRUSTED_PROXIES)")
	ErrBadTopic       = errors.New("invalid -raw-topic (RAW_TOPIC)")
	ErrBadCompression = errors.New("invalid -kafka-compression (EDGE_KAFKA_COMPRESSION): want " + kafkawriter.CompressionNames)
	ErrBadSize        = errors.New("invalid size")
	ErrBadDuration    = errors.New("invalid duration")
)

// minHeaderBytes keeps -max-header-bytes above what any real browser request
// needs even without a long URL.
const minHeaderBytes = 4096

// Validate checks c and derives the parsed forms of list options. All
// problems are reported together.
func (c *Config) Validate() error {
	var errs []error
	if len(c.KafkaBrokers) == 0 {
		errs = append(errs, ErrNoBrokers)
	}
	if c.ProjectsFile == "" && len(c.Keys) == 0 {
		errs = append(errs, ErrNoKeys)
	}
	if specs, err := projects.ParseKeys(c.Keys); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrBadKeys, err))
	} else {
		c.staticKeys = specs
	}
	if p, err := clientip.ParsePrefixes(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrBadProxy, err))
	} else {
		c.trusted = p
	}
	if !validTopic(c.RawTopic) {
		errs = append(errs, fmt.Errorf("%w: %q: want 1-249 of [a-zA-Z0-9._-]", ErrBadTopic, c.RawTopic))
	}
	if comp, ok := kafkawriter.ParseCompression(c.KafkaCompression); ok {
		c.compression = comp
	} else {
		errs = append(errs, fmt.Errorf("%w: %q", ErrBadCompression, c.KafkaCompression))
	}
	if c.Instance = strings.TrimSpace(c.Instance); c.Instance == "" {
		c.Instance = hostname()
	}
	if c.SpoolDir = strings.TrimSpace(c.SpoolDir); c.SpoolDir == "" {
		c.SpoolDir = DefaultSpoolDir(c.Instance, os.Getenv)
	}
	if c.SpoolMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("%w: -spool-max-bytes is %d, want 0 (no spool) or more", ErrBadSize, c.SpoolMaxBytes))
	}
	if c.SpoolSyncEvery < 1 {
		errs = append(errs, fmt.Errorf("%w: -spool-sync-every is %d, want at least 1", ErrBadSize, c.SpoolSyncEvery))
	}
	if c.RateLimit < 0 || c.RateLimit != c.RateLimit {
		errs = append(errs, fmt.Errorf("%w: -rate-limit is %v, want 0 (off) or more", ErrBadSize, c.RateLimit))
	}
	for _, s := range []struct {
		name string
		v    int
		min  int
	}{
		{"-max-header-bytes", c.MaxHeaderBytes, minHeaderBytes},
		{"-max-body-bytes", c.MaxBodyBytes, 1},
		{"-queue-size", c.QueueSize, 1},
		{"-publish-workers", c.PublishWorkers, 1},
		{"-publish-batch-size", c.PublishBatchSize, 1},
		{"-kafka-max-attempts", c.KafkaMaxAttempts, 1},
		{"-rate-burst", c.RateBurst, 0},
		{"-max-conns", c.MaxConns, 1},
	} {
		if s.v < s.min {
			errs = append(errs, fmt.Errorf("%w: %s is %d, want at least %d", ErrBadSize, s.name, s.v, s.min))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"-read-timeout", c.ReadTimeout}, {"-write-timeout", c.WriteTimeout}, {"-idle-timeout", c.IdleTimeout},
		{"-kafka-write-timeout", c.KafkaWriteTimeout},
		{"-shutdown-timeout", c.ShutdownTimeout}, {"-projects-reload-interval", c.ProjectsReload},
		{"-spool-sync-interval", c.SpoolSyncInterval},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%w: %s is %v, want more than 0", ErrBadDuration, d.name, d.v))
		}
	}
	if c.DrainDelay < 0 {
		errs = append(errs, fmt.Errorf("%w: -shutdown-drain-delay is %v, want 0 or more", ErrBadDuration, c.DrainDelay))
	}
	if c.PublishLinger < 0 {
		errs = append(errs, fmt.Errorf("%w: -publish-linger is %v, want 0 or more", ErrBadDuration, c.PublishLinger))
	}
	return errors.Join(errs...)
}

// TrustedPrefixes returns the parsed -trusted-proxies (after Validate).
func (c *Config) TrustedPrefixes() []netip.Prefix { return c.trusted }

// StaticKeys returns the parsed -keys (after Validate).
func (c *Config) StaticKeys() []projects.Spec { return c.staticKeys }

// Compression returns the parsed -kafka-compression (after Validate).
func (c *Config) Compression() kafka.Compression { return c.compression }

// DefaultSpoolDir is where the spool lives without -spool-dir: a per-user
// state directory ($XDG_STATE_HOME, else ~/.local/state; /var/lib without
// a home), then pixelstream/edge/INSTANCE/spool, so it survives restarts
// and two edges on one host (different -instance) do not share it. The
// spool locks its directory: two edges with the same instance name fail
// to start rather than mix their spools.
func DefaultSpoolDir(instance string, getenv func(string) string) string {
	base := getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		base = ""
		if home := getenv("HOME"); home != "" && home != "/" && filepath.IsAbs(home) {
			base = filepath.Join(home, ".local", "state")
		}
	}
	if base == "" {
		base = "/var/lib"
	}
	return filepath.Join(base, "pixelstream", "edge", safeName(instance), "spool")
}

// safeName makes an instance name one path element.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || string(b) == "." || string(b) == ".." {
		return "edge"
	}
	return string(b)
}

// hostname names the instance when -instance is empty; in Kubernetes it is
// the pod name.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "edge"
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Load declares the options, parses args and the environment, and
// validates. It returns set so the caller can print the option table;
// pkgconfig.ErrHelp after -h (usage was written to usage).
func Load(args []string, getenv func(string) string, usage io.Writer) (*Config, *pkgconfig.Set, error) {
	c := &Config{}
	set := pkgconfig.New("edge")
	c.Bind(set)
	if err := set.Parse(args, getenv, usage); err != nil {
		return nil, set, err
	}
	if c.PrintOptions {
		return c, set, nil
	}
	if err := c.Validate(); err != nil {
		return nil, set, err
	}
	return c, set, nil
}
