package kafkawriter

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
)

// shapes returns n records of every shape the encoder distinguishes, each
// named by its first header "n": nil and empty keys and values, nil and
// empty header values, values over several LZ4 blocks, explicit and unset
// times.
func shapes(n int, t0 time.Time) []kafka.Message {
	big := bytes.Repeat([]byte(`{"page_url":"https://shop.example/p/9","geo":"Berlin"},`), 2500)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.Headers = []kafka.Header{{Key: "n", Value: []byte(strconv.Itoa(i))}}
		switch i % 7 {
		case 0:
			m.Value = fmt.Appendf(nil, `{"i":%d}`, i)
		case 1:
			m.Key, m.Value = []byte{}, []byte{}
		case 2:
			m.Key = fmt.Appendf(nil, "visitor-%d", i)
		case 3:
			m.Key, m.Value = []byte("k"), big[:50_000+i]
			m.Headers = append(m.Headers, kafka.Header{Key: "nil", Value: nil}, kafka.Header{Key: "empty", Value: []byte{}})
		default:
			m.Key, m.Value = fmt.Appendf(nil, "visitor-%d", i%11), fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, big[:i*13%900])
		}
		if i%3 != 0 {
			m.Time = t0.Add(time.Duration(i) * time.Millisecond)
		}
	}
	return msgs
}

// TestBroker writes through every codec to the broker in KAFKA_BROKERS (a
// real Kafka validates each batch's layout and CRC-32C and answers
// CORRUPT_MESSAGE otherwise), in one request and in chunks, and reads every
// record back intact with kafka-go and, as an independent client, kcat.
// Without KAFKA_BROKERS it runs against kfake.
func TestBroker(t *testing.T) {
	kafkatest.Integration(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for _, tc := range []struct {
		name       string
		comp       kafka.Compression
		batchBytes int64
	}{
		{"none", 0, 0},
		{"gzip", kafka.Gzip, 0},
		{"snappy", kafka.Snappy, 0},
		{"lz4", kafka.Lz4, 0},
		{"zstd", kafka.Zstd, 0},
		{"lz4 in chunks", kafka.Lz4, 200_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := kafkatest.UniqueTopic(t, "kafkawriter")
			brokers := kafkatest.Brokers(t, topic)
			w := newWriter(t, Config{Brokers: brokers, Topic: topic, Compression: tc.comp, BatchBytes: tc.batchBytes})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			msgs := shapes(140, t0)
			before := time.Now().Truncate(time.Millisecond)
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			enriched := enricherBatch(1000)
			if err := w.WriteMessages(ctx, enriched...); err != nil {
				t.Fatal(err)
			}

			got := kafkatest.ReadAll(t, brokers, topic, len(msgs)+len(enriched), 60*time.Second)
			if len(got) != len(msgs)+len(enriched) {
				t.Fatalf("read %d records, want %d", len(got), len(msgs)+len(enriched))
			}
			seen := map[int]bool{}
			values := map[string]int{}
			for _, m := range enriched {
				values[string(m.Value)]++
			}
			for _, g := range got {
				if len(g.Headers) == 0 {
					if values[string(g.Value)] == 0 {
						t.Fatalf("record %.60q: not written, or read twice", g.Value)
					}
					values[string(g.Value)]--
					continue
				}
				i, err := strconv.Atoi(string(g.Headers[0].Value))
				if err != nil || i < 0 || i >= len(msgs) || seen[i] {
					t.Fatalf("record named %q: unknown or read twice", g.Headers[0].Value)
				}
				seen[i] = true
				want := &msgs[i]
				// kafka-go's Reader returns empty keys and values as nil:
				// null against empty is kcat's to check, below.
				if !bytes.Equal(g.Key, want.Key) || !bytes.Equal(g.Value, want.Value) {
					t.Fatalf("record %d: key %q value %.40q; want %q, %.40q", i, g.Key, g.Value, want.Key, want.Value)
				}
				if len(g.Headers) != len(want.Headers) {
					t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(want.Headers))
				}
				for k, h := range g.Headers {
					if h.Key != want.Headers[k].Key || !bytes.Equal(h.Value, want.Headers[k].Value) {
						t.Fatalf("record %d header %d: %q=%q, want %q=%q", i, k, h.Key, h.Value, want.Headers[k].Key, want.Headers[k].Value)
					}
				}
				switch {
				case !want.Time.IsZero() && !g.Time.Equal(want.Time):
					t.Fatalf("record %d: time %v, want %v", i, g.Time, want.Time)
				case want.Time.IsZero() && (g.Time.Before(before) || g.Time.After(after)):
					t.Fatalf("record %d without a time: %v, want the write's, %v to %v", i, g.Time, before, after)
				}
			}
			if len(seen) != len(msgs) {
				t.Fatalf("%d of %d named records read", len(seen), len(msgs))
			}
			t.Run("kcat", func(t *testing.T) {
				var nulls, empties, wantNulls, wantEmpties int
				for _, m := range msgs {
					switch {
					case m.Value == nil:
						wantNulls++
					case len(m.Value) == 0:
						wantEmpties++
					}
				}
				vals := kafkatest.Kcat(t, brokers, topic, 60*time.Second)
				for _, v := range vals {
					switch {
					case v == nil:
						nulls++
					case len(v) == 0:
						empties++
					}
				}
				if len(vals) != len(got) || nulls != wantNulls || empties != wantEmpties {
					t.Fatalf("kcat read %d records, %d null and %d empty values; want %d, %d, %d",
						len(vals), nulls, empties, len(got), wantNulls, wantEmpties)
				}
			})
		})
	}
}
