package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/hit"
	"github.com/pixelstream/pixelstream/pkg/pageview"
	"github.com/pixelstream/pixelstream/services/enricher/internal/deadletter"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

var received = time.Date(2026, 11, 26, 20, 15, 0, 123000000, time.UTC)

func rawHit(ua string) *hit.Raw {
	return &hit.Raw{
		SchemaVersion: hit.SchemaVersion, EventID: hit.NewEventID(received.UnixNano()), ReceivedAtNs: received.UnixNano(),
		APIKey: []byte("demo"), ProjectID: []byte("demo-project"), ClientIP: netip.MustParseAddr("81.2.69.142"),
		UserAgent: []byte(ua), Host: []byte("t.example"), EdgeInstance: []byte("edge-a"), DNT: true, Prefetch: true,
		AcceptLanguage: []byte("en-GB"), Method: []byte("GET"),
	}
}

func newStage(steps ...Step) (*Stage, *prometheus.CounterVec) {
	recs := NewRecordsCounter(prometheus.NewRegistry())
	return &Stage{
		Steps: append(append([]Step{Basics}, steps...), IPPolicy(IPFull)), EnrichedTopic: "pageviews.enriched", DeadletterTopic: "hits.deadletter",
		Log: zap.NewNop(), Records: recs,
	}, recs
}

func TestStageEnrichesAndDeadLetters(t *testing.T) {
	failing := StepFunc(func(raw *hit.Raw, _ *pageview.Pageview, _ *Scratch) error {
		if string(raw.UserAgent) == "fail-me" {
			return errors.New("step failed")
		}
		if string(raw.UserAgent) == "panic-me" {
			panic("bug")
		}
		return nil
	})
	s, recs := newStage(failing)
	noProject := rawHit("x")
	noProject.ProjectID = nil
	good1, good2 := rawHit("Mozilla/5.0 one"), rawHit("Mozilla/5.0 \"two\"")
	in := []struct {
		value     []byte
		wantClass string
	}{
		{good1.AppendProto(nil), ""},
		{[]byte("definitely not protobuf \xff"), deadletter.ReasonDecode},
		{noProject.AppendProto(nil), deadletter.ReasonInvalid},
		{rawHit("fail-me").AppendProto(nil), deadletter.ReasonEnrich},
		{rawHit("panic-me").AppendProto(nil), deadletter.ReasonEnrich},
		{good2.AppendProto(nil), ""},
	}
	b := &pipeline.Batch{}
	for i, r := range in {
		b.In = append(b.In, kafka.Message{Topic: "hits.raw", Partition: 1, Offset: int64(i), Key: []byte("vk"), Value: r.value})
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Out) != len(in) {
		t.Fatalf("%d outputs for %d inputs", len(b.Out), len(in))
	}
	for i, want := range in {
		out := b.Out[i]
		if want.wantClass != "" {
			if out.Topic != "hits.deadletter" || deadletter.Header(out, deadletter.HeaderClass) != want.wantClass ||
				string(out.Value) != string(want.value) {
				t.Errorf("record %d: want dead letter %s with original bytes, got topic %s class %q", i, want.wantClass,
					out.Topic, deadletter.Header(out, deadletter.HeaderClass))
			}
			continue
		}
		if out.Topic != "pageviews.enriched" || string(out.Key) != "vk" {
			t.Errorf("record %d: topic %s key %s", i, out.Topic, out.Key)
		}
		var pv pageview.Pageview
		if err := json.Unmarshal(out.Value, &pv); err != nil {
			t.Fatalf("record %d: %v: %s", i, err, out.Value)
		}
		src := good1
		if i == 5 {
			src = good2
		}
		if pv.EventID != src.EventID.String() || pv.UserAgent != string(src.UserAgent) || pv.ProjectID != "demo-project" ||
			pv.ReceivedAt != "2026-11-26T20:15:00.123Z" || pv.IP != "81.2.69.142" || !pv.DNT || !pv.Prefetch ||
			pv.TrackingHost != "t.example" || pv.EventType != "pageview" || pv.SchemaVersion != pageview.SchemaVersion {
			t.Errorf("record %d: wrong fields: %+v", i, pv)
		}
	}
	if got := testutil.ToFloat64(recs.WithLabelValues("enriched")); got != 2 {
		t.Errorf("enriched count %v", got)
	}
	if got := testutil.ToFloat64(recs.WithLabelValues(deadletter.ReasonEnrich)); got != 2 {
		t.Errorf("enrich dead letters %v", got)
	}
}

// Scratch-backed strings of one record must not be disturbed by the next
// record's processing before encoding; values must not alias each other.
func TestStageOutputsIndependent(t *testing.T) {
	s, _ := newStage()
	b := &pipeline.Batch{}
	for i := range 50 {
		r := rawHit("ua")
		r.ClientIP = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		b.In = append(b.In, kafka.Message{Value: r.AppendProto(nil)})
	}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for i, out := range b.Out {
		var pv pageview.Pageview
		if err := json.Unmarshal(out.Value, &pv); err != nil {
			t.Fatal(err)
		}
		if want := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String(); pv.IP != want {
			t.Fatalf("record %d has ip %s, want %s", i, pv.IP, want)
		}
	}
}

func FuzzStage(f *testing.F) {
	f.Add(rawHit("Mozilla/5.0").AppendProto(nil))
	f.Add([]byte{0x0a, 0x01})
	s, _ := newStage()
	f.Fuzz(func(t *testing.T, v []byte) {
		b := &pipeline.Batch{In: []kafka.Message{{Value: v}}}
		if err := s.Process(context.Background(), b); err != nil || len(b.Out) != 1 {
			t.Fatalf("err=%v outs=%d", err, len(b.Out))
		}
		if b.Out[0].Topic == "pageviews.enriched" && !json.Valid(b.Out[0].Value) {
			t.Fatalf("invalid JSON: %s", b.Out[0].Value)
		}
	})
}

func BenchmarkStageBasics(b *testing.B) {
	s, _ := newStage()
	batch := &pipeline.Batch{}
	v := rawHit("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36").AppendProto(nil)
	in := make([]kafka.Message, 100)
	for i := range in {
		in[i].Value = v
	}
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		batch.In = append(batch.In, in...)
		_ = s.Process(context.Background(), batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/record")
}

func TestSkippedRecordsProduceNothing(t *testing.T) {
	skipDNT := StepFunc(func(raw *hit.Raw, _ *pageview.Pageview, _ *Scratch) error {
		if raw.DNT {
			return &Skip{Reason: "dnt"}
		}
		return nil
	})
	s, recs := newStage(skipDNT)
	tracked := rawHit("ua")
	tracked.DNT = false
	b := &pipeline.Batch{In: []kafka.Message{{Value: rawHit("ua").AppendProto(nil)}, {Value: tracked.AppendProto(nil)}}}
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(b.Out) != 2 || b.Out[0].Topic != "" || b.Out[1].Topic != "pageviews.enriched" {
		t.Fatalf("outputs: %q %q", b.Out[0].Topic, b.Out[1].Topic)
	}
	if testutil.ToFloat64(recs.WithLabelValues("dnt")) != 1 {
		t.Fatal("skip not counted")
	}
}

// Warm sees every distinct User-Agent of a batch once, before enrichment.
func TestWarmDistinctUserAgents(t *testing.T) {
	s, _ := newStage()
	var mu sync.Mutex
	warmed := map[string]int{}
	s.Warm = func(ua []byte) { mu.Lock(); warmed[string(ua)]++; mu.Unlock() }
	s.WarmWorkers = 2
	b := &pipeline.Batch{}
	for i := range 30 {
		b.In = append(b.In, kafka.Message{Value: rawHit(fmt.Sprintf("ua-%d", i%7)).AppendProto(nil)})
	}
	b.In = append(b.In, kafka.Message{Value: []byte("not a record")})
	if err := s.Process(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if len(warmed) != 7 {
		t.Fatalf("warmed %d distinct UAs, want 7", len(warmed))
	}
	for ua, n := range warmed {
		if n != 1 {
			t.Fatalf("%s warmed %d times", ua, n)
		}
	}
	if len(b.Out) != 31 || b.Out[30].Topic != "hits.deadletter" {
		t.Fatalf("outputs %d", len(b.Out))
	}
}
