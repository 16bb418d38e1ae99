package app

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/kafkatest"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/config"
	"github.com/pixelstream/pixelstream/services/enricher/internal/deadletter"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"
)

func testConfig(brokers []string, raw, enriched, dead string) *config.Config {
	return &config.Config{
		Brokers: brokers, RawTopic: raw, EnrichedTopic: enriched, DeadletterTopic: dead,
		GroupID: "enricher-test-" + raw, AdminAddr: "127.0.0.1:0", GeoIPReload: time.Minute,
		UACacheSize: 1000, BatchSize: 100, BatchLinger: 2 * time.Millisecond,
		RetryInitial: 50 * time.Millisecond, RetryMax: time.Second, SessionTimeout: 6 * time.Second,
		ShutdownTime: 10 * time.Second, LogLevel: "info",
		DefaultIPMode: "truncate", SaltTopic: "salts." + raw, SaltReplication: -1, SaltPrepareAhead: 10 * time.Minute,
		VisitorSessionTimeout: 30 * time.Minute, VisitorSessionMax: 10000, DedupWindow: 10 * time.Minute, DedupMaxIDs: 10000,
	}
}

func produceRaw(t *testing.T, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte{byte('a' + i%7)}, Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// runPipeline feeds n good hits and some poison into the raw topic, runs the
// enricher until it has written them all, shuts it down, and checks every
// hit arrived exactly once and the poison went to the dead-letter topic.
func runPipeline(t *testing.T, brokers []string, raw, enriched, dead string) {
	const n = 300
	want := map[string]bool{}
	var values [][]byte
	for i := range n {
		r := &hit.Raw{SchemaVersion: hit.SchemaVersion, EventID: hit.NewEventID(time.Now().UnixNano()),
			ReceivedAtNs: time.Now().UnixNano(), ProjectID: []byte("p1"), APIKey: []byte("k1"),
			ClientIP:  netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
			UserAgent: []byte("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1")}
		want[r.EventID.String()] = true
		values = append(values, r.AppendProto(nil))
		if i%100 == 50 {
			values = append(values, []byte("poison record"))
		}
	}
	produceRaw(t, brokers, raw, values...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, testConfig(brokers, raw, enriched, dead), zaptest.NewLogger(t)) }()
	got := kafkatest.ReadAll(t, brokers, enriched, n, 60*time.Second)
	dls := kafkatest.ReadAll(t, brokers, dead, 3, 30*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("enricher did not stop within 30s of SIGTERM")
	}
	seen := map[string]int{}
	for _, m := range got {
		var pv pageview.Pageview
		if err := json.Unmarshal(m.Value, &pv); err != nil {
			t.Fatalf("bad JSON %s: %v", m.Value, err)
		}
		seen[pv.EventID]++
		if pv.DeviceType != "mobile" || pv.OSFamily != "iOS" || pv.ProjectID != "p1" || len(pv.VisitorID) != 32 ||
			pv.SessionID == "" || pv.IPMode != "truncate" || !strings.HasSuffix(pv.IP, ".0") {
			t.Fatalf("not enriched: %+v", pv)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s arrived %d times", id, seen[id])
		}
	}
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	for _, m := range dls {
		if string(m.Value) != "poison record" || deadletter.Header(m, deadletter.HeaderClass) != deadletter.ReasonDecode {
			t.Fatalf("dead letter lost its bytes or reason: %q %v", m.Value, m.Headers)
		}
	}

	// Offsets were committed: a restarted member of the same group has
	// nothing left to do, so nothing more reaches the enriched topic.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel2()
	if err := Run(ctx2, testConfig(brokers, raw, enriched, dead), zaptest.NewLogger(t)); err != nil {
		t.Fatal(err)
	}
	if again := kafkatest.ReadAll(t, brokers, enriched, n+1, 3*time.Second); len(again) != n {
		t.Fatalf("restart re-enriched committed records: %d records, want %d", len(again), n)
	}
}

func TestRunKfake(t *testing.T) {
	brokers := kafkatest.NewCluster(t, "hits.raw", "pageviews.enriched", "hits.deadletter")
	runPipeline(t, brokers, "hits.raw", "pageviews.enriched", "hits.deadletter")
}

func TestRunRealBroker(t *testing.T) {
	kafkatest.Integration(t)
	raw, enriched, dead := kafkatest.UniqueTopic(t, "hits.raw"), kafkatest.UniqueTopic(t, "pageviews.enriched"), kafkatest.UniqueTopic(t, "hits.deadletter")
	brokers := kafkatest.Brokers(t, raw, enriched, dead)
	runPipeline(t, brokers, raw, enriched, dead)
}
