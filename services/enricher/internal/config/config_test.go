package config

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/config"
	"github.com/segmentio/kafka-go"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	var c Config
	s := config.New("enricher")
	c.Declare(s)
	if err := s.Parse(args, func(k string) string { return env[k] }, io.Discard); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want error
	}{
		{"no brokers", nil, nil, ErrNoBrokers},
		{"defaults ok", map[string]string{"KAFKA_BROKERS": "127.0.0.1:9092"}, nil, nil},
		{"same topics", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHED_TOPIC": "hits.raw"}, nil, ErrNoTopic},
		{"bad batch", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-batch-size", "0"}, ErrBatch},
		{"bad codec", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHER_KAFKA_COMPRESSION": "brotli"}, nil, ErrCodec},
		{"snappy", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-kafka-compression", "Snappy"}, nil},
		{"negative commit interval", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-commit-interval", "-1s"}, ErrDuration},
		{"commit after every batch", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHER_COMMIT_INTERVAL": "0"}, nil, nil},
		{"bad duration", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-retry-max", "1ms"}, ErrDuration},
		{"bad ip mode", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHER_DEFAULT_IP_MODE": "hash"}, nil, ErrIPMode},
		{"bad session", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-visitor-session-timeout", "0s"}, ErrVisitor},
		{"negative workers", map[string]string{"KAFKA_BROKERS": "b:1"}, []string{"-enrich-workers", "-1"}, ErrWorkers},
		{"too many workers", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHER_WORKERS": "1000"}, nil, ErrWorkers},
		{"no group", map[string]string{"KAFKA_BROKERS": "b:1", "ENRICHER_GROUP_ID": ""}, []string{"-group-id="}, ErrNoGroup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.env, tc.args...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, map[string]string{"KAFKA_BROKERS": "a:1,b:2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.RawTopic != "hits.raw" || c.EnrichedTopic != "pageviews.enriched" || c.DeadletterTopic != "hits.deadletter" ||
		len(c.Brokers) != 2 || c.BatchLinger != 5*time.Millisecond || c.Codec() != kafka.Lz4 || c.CommitInterval != 100*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
}
