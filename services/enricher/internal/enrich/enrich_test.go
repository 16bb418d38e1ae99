package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
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
	chain := append(append([]Step{Basics}, steps...), IPPolicy(IPFull))
	return &Stage{
		NewSteps: func() []Step { return chain }, EnrichedTopic: "pageviews.enriched", DeadletterTopic: "hits.deadletter",
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
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			s, recs := newStage(failing)
			s.Workers = workers
			checkEnrichesAndDeadLetters(t, s, recs)
		})
	}
}

func checkEnrichesAndDeadLetters(t *testing.T, s *Stage, recs *prometheus.CounterVec) {
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
	v := rawHit("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36").AppendProto(nil)
	in := make([]kafka.Message, 100)
	for i := range in {
		in[i].Value = v
	}
	benchBatches(b, s, in)
}

// benchBatches runs in through s as one batch per iteration and reports
// the wall time per record.
func benchBatches(b *testing.B, s *Stage, in []kafka.Message) {
	batch := &pipeline.Batch{}
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

// The ordered steps see every record in input order, once, before the
// per-record steps; each worker's chain is its own; outputs keep input order
// whatever worker encoded them; a record the ordered pass withholds never
// reaches a worker.
func TestWorkersOrderedPassAndOwnChains(t *testing.T) {
	const n = 1000
	var seen []string // written by the ordered step only: no lock, so -race checks it stays serial
	ordered := StepFunc(func(raw *hit.Raw, pv *pageview.Pageview, s *Scratch) error {
		seen = append(seen, string(raw.UserAgent))
		if strings.HasSuffix(string(raw.UserAgent), "-skip") {
			return &Skip{Reason: "duplicate"}
		}
		pv.VisitorID = s.Format(func(b []byte) []byte { return append(b, "v-"+string(raw.UserAgent)...) })
		return nil
	})
	var chains, leaked atomic.Int64
	newSteps := func() []Step {
		chains.Add(1)
		var held string // per-chain state between two steps, as Shared is
		return []Step{Basics,
			StepFunc(func(raw *hit.Raw, _ *pageview.Pageview, _ *Scratch) error {
				if strings.HasSuffix(string(raw.UserAgent), "-skip") {
					leaked.Add(1)
				}
				held = string(raw.UserAgent)
				runtime.Gosched() // let another worker run between the two steps
				return nil
			}),
			StepFunc(func(_ *hit.Raw, pv *pageview.Pageview, _ *Scratch) error { pv.DeviceModel = held; return nil }),
		}
	}
	recs := NewRecordsCounter(prometheus.NewRegistry())
	s := &Stage{Ordered: []Step{ordered}, NewSteps: newSteps, Workers: 4, EnrichedTopic: "pageviews.enriched",
		DeadletterTopic: "hits.deadletter", Log: zap.NewNop(), Records: recs}
	for round := range 2 { // the second batch reuses the workers and buffers
		seen = seen[:0]
		b := &pipeline.Batch{}
		var want []string
		for i := range n {
			ua := fmt.Sprintf("ua-%d-%d", round, i)
			if i%10 == 3 {
				ua += "-skip"
			}
			want = append(want, ua)
			b.In = append(b.In, kafka.Message{Value: rawHit(ua).AppendProto(nil)})
		}
		if err := s.Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, want) {
			t.Fatalf("round %d: the ordered step saw records out of order or more than once", round)
		}
		for i, out := range b.Out {
			if strings.HasSuffix(want[i], "-skip") {
				if out.Topic != "" {
					t.Fatalf("round %d record %d: withheld record produced to %q", round, i, out.Topic)
				}
				continue
			}
			var pv pageview.Pageview
			if err := json.Unmarshal(out.Value, &pv); err != nil {
				t.Fatalf("round %d record %d: %v", round, i, err)
			}
			if pv.UserAgent != want[i] || pv.DeviceModel != want[i] || pv.VisitorID != "v-"+want[i] {
				t.Fatalf("round %d record %d: got ua %q model %q visitor %q, want %q", round, i, pv.UserAgent, pv.DeviceModel, pv.VisitorID, want[i])
			}
		}
	}
	if got := chains.Load(); got != 4 {
		t.Errorf("%d chains built for 4 workers (once, reused across batches)", got)
	}
	if leaked.Load() != 0 {
		t.Errorf("%d withheld records reached a worker", leaked.Load())
	}
	if got := testutil.ToFloat64(recs.WithLabelValues("enriched")); got != 2*900 {
		t.Errorf("enriched count %v, want 1800", got)
	}
	if got := testutil.ToFloat64(recs.WithLabelValues("duplicate")); got != 2*100 {
		t.Errorf("withheld count %v, want 200", got)
	}
}
