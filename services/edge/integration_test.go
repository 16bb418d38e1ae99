package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// TestIntegration starts the whole edge on loopback against the broker from
// KAFKA_BROKERS (kfake without it), fires hits the way browsers and proxies
// send them, and reads them back from Kafka, with kafka-go and with kcat.
// Run with PIXELSTREAM_INTEGRATION=1.
func TestIntegration(t *testing.T) {
	kafkatest.Integration(t)
	topic := kafkatest.UniqueTopic(t, "hits.raw")
	brokers := kafkatest.Brokers(t, topic)

	projects := filepath.Join(t.TempDir(), "projects.yaml")
	if err := os.WriteFile(projects, []byte("projects:\n  - id: shop\n    keys: [shop-key]\n    allowed_hosts: [shop.example.com]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, "-kafka-brokers", strings.Join(brokers, ","), "-raw-topic", topic,
		"-projects-file", projects, "-keys", "demo=demo-project",
		"-trusted-proxies", "127.0.0.0/8", "-instance", "edge-it", "-shutdown-drain-delay", "0s")
	e.waitReady(t)

	const n = 50
	ua := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1"
	for i := range n {
		client := fmt.Sprintf("198.51.100.%d", i+1)
		code := e.hit(t, fmt.Sprintf("key=shop-key&url=https%%3A%%2F%%2Fshop.example.com%%2Fp%%2F%d&utm_source=newsletter", i),
			"User-Agent", ua, "Referer", "https://shop.example.com/", "X-Forwarded-For", "6.6.6.6, "+client, "DNT", "1")
		if code != 200 {
			t.Fatalf("hit %d: %d", i, code)
		}
	}
	// Rejected hits never reach Kafka.
	if code := e.hit(t, "key=shop-key&url=https://evil.test/"); code != 403 {
		t.Fatalf("foreign host: %d", code)
	}
	if code := e.hit(t, "key=demo", "Sec-Purpose", "prefetch"); code != 200 {
		t.Fatalf("prefetch: %d", code)
	}

	msgs := kafkatest.ReadAll(t, brokers, topic, n+1, 30*time.Second)
	if len(msgs) != n+1 {
		t.Fatalf("read %d records, want %d", len(msgs), n+1)
	}
	seen := map[hit.EventID]bool{}
	prefetches := 0
	for _, m := range msgs {
		var r hit.Raw
		if err := r.Unmarshal(m.Value); err != nil {
			t.Fatal(err)
		}
		if seen[r.EventID] {
			t.Fatalf("duplicate event %s", r.EventID)
		}
		seen[r.EventID] = true
		if want := hit.AppendVisitorKey(nil, r.ProjectID, r.ClientIP, r.UserAgent); !bytes.Equal(m.Key, want) {
			t.Errorf("key %q, want visitor key %q", m.Key, want)
		}
		if string(r.EdgeInstance) != "edge-it" {
			t.Errorf("instance %q", r.EdgeInstance)
		}
		if r.Prefetch {
			prefetches++
			if string(r.ProjectID) != "demo-project" {
				t.Errorf("prefetch hit for %q", r.ProjectID)
			}
			continue
		}
		if string(r.ProjectID) != "shop" || !r.DNT || string(r.UserAgent) != ua {
			t.Errorf("hit decoded as %+v", r)
		}
		if !netip.MustParsePrefix("198.51.100.0/24").Contains(r.ClientIP) {
			t.Errorf("client ip %v: not the address behind the trusted proxy", r.ClientIP)
		}
	}
	if prefetches != 1 {
		t.Errorf("%d prefetch hits, want 1", prefetches)
	}

	t.Run("kcat", func(t *testing.T) {
		values := kafkatest.Kcat(t, brokers, topic, 30*time.Second)
		if len(values) != n+1 {
			t.Fatalf("kcat read %d records, want %d", len(values), n+1)
		}
		for _, v := range values {
			var r hit.Raw
			if err := r.Unmarshal(v); err != nil || !seen[r.EventID] {
				t.Fatalf("kcat record does not match: %v", err)
			}
		}
	})
}
