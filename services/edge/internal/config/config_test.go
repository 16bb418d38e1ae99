package config

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	pkgconfig "github.com/pixelstream/pixelstream/pkg/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, _, err := Load([]string{"-kafka-brokers", "k1:9092", "-keys", "demo=demo-project"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.AdminAddr != ":9100" || c.RawTopic != "hits.raw" || c.MaxHeaderBytes != 16384 ||
		c.DrainDelay != 5*time.Second || c.LogLevel != "info" || c.Compression() != kafka.Snappy {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if h, _ := os.Hostname(); h != "" && c.Instance != h {
		t.Errorf("instance %q, want host name %q", c.Instance, h)
	}
	if len(c.StaticKeys()) != 1 || c.StaticKeys()[0].ID != "demo-project" {
		t.Errorf("static keys %+v", c.StaticKeys())
	}
}

func TestEnvironmentAndFlagPrecedence(t *testing.T) {
	e := env(map[string]string{
		"KAFKA_BROKERS":        "a:9092, b:9092",
		"EDGE_KEYS":            "k1=p1,k2=p2",
		"EDGE_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7",
		"EDGE_QUEUE_SIZE":      "100",
		"EDGE_DRAIN_DELAY":     "1s",
		"RAW_TOPIC":            "from-env",
	})
	c, _, err := Load([]string{"-raw-topic", "from-flag"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.KafkaBrokers, "|") != "a:9092|b:9092" || c.QueueSize != 100 || c.DrainDelay != time.Second {
		t.Fatalf("environment not applied: %+v", c)
	}
	if c.RawTopic != "from-flag" {
		t.Errorf("flag lost to environment: %q", c.RawTopic)
	}
	if len(c.TrustedPrefixes()) != 2 || c.TrustedPrefixes()[1].String() != "192.0.2.7/32" {
		t.Errorf("trusted proxies %v", c.TrustedPrefixes())
	}
}

func TestValidate(t *testing.T) {
	base := []string{"-kafka-brokers", "k:9092", "-keys", "a=b"}
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"no brokers", []string{"-keys", "a=b"}, ErrNoBrokers},
		{"no keys", []string{"-kafka-brokers", "k:9092"}, ErrNoKeys},
		{"bad keys", append(base, "-keys", "novalue"), ErrBadKeys},
		{"bad proxy", append(base, "-trusted-proxies", "lb.internal"), ErrBadProxy},
		{"bad topic", append(base, "-raw-topic", "hits raw"), ErrBadTopic},
		{"bad compression", append(base, "-kafka-compression", "brotli"), ErrBadCompression},
		{"tiny header limit", append(base, "-max-header-bytes", "100"), ErrBadSize},
		{"no queue", append(base, "-queue-size", "0"), ErrBadSize},
		{"zero timeout", append(base, "-read-timeout", "0s"), ErrBadDuration},
		{"negative drain", append(base, "-shutdown-drain-delay", "-1s"), ErrBadDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(tt.args, env(nil), io.Discard)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	// Only a projects file is enough.
	if _, _, err := Load([]string{"-kafka-brokers", "k:9092", "-projects-file", "p.yaml"}, env(nil), io.Discard); err != nil {
		t.Fatalf("projects file alone: %v", err)
	}
	// All problems at once.
	_, _, err := Load(nil, env(nil), io.Discard)
	if !errors.Is(err, ErrNoBrokers) || !errors.Is(err, ErrNoKeys) {
		t.Fatalf("want both errors, got %v", err)
	}
	if !strings.Contains(ErrNoBrokers.Error(), "-kafka-brokers or KAFKA_BROKERS") {
		t.Fatalf("message %q", ErrNoBrokers)
	}
}

func TestHelpAndPrintOptions(t *testing.T) {
	var out strings.Builder
	if _, _, err := Load([]string{"-h"}, env(nil), &out); !errors.Is(err, pkgconfig.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(out.String(), "KAFKA_BROKERS") {
		t.Fatalf("usage lacks variables: %s", out.String())
	}
	c, set, err := Load([]string{"-print-options"}, env(nil), io.Discard)
	if err != nil || !c.PrintOptions {
		t.Fatalf("-print-options must not need the required options: %v", err)
	}
	md := set.Markdown()
	for _, want := range []string{"`-addr`", "`EDGE_ADDR`", "`:8080`", "`-kafka-brokers`", "`-shutdown-drain-delay`", "`EDGE_DRAIN_DELAY`", "`5s`", "`16384`"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %s", want)
		}
	}
}

func TestDefaultSpoolDir(t *testing.T) {
	tests := []struct {
		env      map[string]string
		instance string
		want     string
	}{
		{map[string]string{"XDG_STATE_HOME": "/state", "HOME": "/home/e"}, "edge-1", "/state/pixelstream/edge/edge-1/spool"},
		{map[string]string{"HOME": "/home/e"}, "pod/7", "/home/e/.local/state/pixelstream/edge/pod_7/spool"},
		{map[string]string{"HOME": "/"}, "..", "/var/lib/pixelstream/edge/edge/spool"},
		{map[string]string{"XDG_STATE_HOME": "relative"}, "a", "/var/lib/pixelstream/edge/a/spool"},
	}
	for _, tt := range tests {
		if got := DefaultSpoolDir(tt.instance, env(tt.env)); got != tt.want {
			t.Errorf("DefaultSpoolDir(%q, %v) = %q, want %q", tt.instance, tt.env, got, tt.want)
		}
	}
}

func TestSpoolAndRateOptions(t *testing.T) {
	c, _, err := Load([]string{"-kafka-brokers", "b:9092", "-keys", "k=p", "-spool-dir", "/tmp/s", "-rate-limit", "2.5"},
		env(map[string]string{"EDGE_SPOOL_MAX_BYTES": "1048576", "EDGE_RATE_BURST": "7", "EDGE_SPOOL_SYNC_INTERVAL": "250ms"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SpoolDir != "/tmp/s" || c.SpoolMaxBytes != 1<<20 || c.RateLimit != 2.5 || c.RateBurst != 7 ||
		c.SpoolSyncInterval != 250*time.Millisecond || c.SpoolSyncEvery != 1000 || c.MaxConns != 10000 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range [][]string{{"-spool-max-bytes", "-1"}, {"-rate-limit", "-1"}, {"-rate-burst", "-2"}, {"-spool-sync-interval", "0s"}, {"-max-conns", "0"}} {
		if _, _, err := Load(append([]string{"-kafka-brokers", "b:9092", "-keys", "k=p"}, bad...), env(nil), io.Discard); !errors.Is(err, ErrBadSize) && !errors.Is(err, ErrBadDuration) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
