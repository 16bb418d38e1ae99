package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// roundTrip writes n keyed messages with a kafka-go Writer (acks=all) and
// reads them back with ReadAll and with kcat.
func roundTrip(t *testing.T, brokers []string, topic string) {
	const n = 30
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	want := make([]string, n)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		want[i] = fmt.Sprintf(`{"i":%d,"v":"line\nbreak %d"}`, i, i) // a newline inside, for kcat
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(want[i])}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	sort.Strings(want)

	got := ReadAll(t, brokers, topic, n, 20*time.Second)
	if len(got) != n {
		t.Fatalf("ReadAll: got %d messages, want %d", len(got), n)
	}
	partitions := map[int]bool{}
	values := make([]string, len(got))
	for i, m := range got {
		values[i] = string(m.Value)
		partitions[m.Partition] = true
		if wantKey := "key-"; !strings.HasPrefix(string(m.Key), wantKey) {
			t.Errorf("message %d: key %q", i, m.Key)
		}
	}
	sort.Strings(values)
	if strings.Join(values, "|") != strings.Join(want, "|") {
		t.Errorf("ReadAll values differ:\n got %q\nwant %q", values, want)
	}
	if len(partitions) < 2 {
		t.Errorf("30 keys landed in %d partition(s), want them spread over the %d partitions", len(partitions), DefaultPartitions)
	}

	// want <= 0: everything up to the current end.
	if all := ReadAll(t, brokers, topic, 0, 20*time.Second); len(all) != n {
		t.Errorf("ReadAll(want=0): got %d messages, want %d", len(all), n)
	}

	t.Run("kcat", func(t *testing.T) {
		raw := Kcat(t, brokers, topic, 30*time.Second)
		kv := make([]string, len(raw))
		for i, v := range raw {
			kv[i] = string(v)
		}
		sort.Strings(kv)
		if strings.Join(kv, "|") != strings.Join(want, "|") {
			t.Errorf("kcat values differ:\n got %q\nwant %q", kv, want)
		}
	})
}

// groupCommit consumes with a consumer group (FetchMessage, then
// CommitMessages), closes the reader, and checks that a new member of the same
// group resumes after the committed offsets.
func groupCommit(t *testing.T, brokers []string, topic string) {
	group := UniqueTopic(t, "group")
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	write := func(prefix string, n int) {
		t.Helper()
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
	}
	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			GroupID:     group,
			Topic:       topic,
			StartOffset: kafka.FirstOffset,
			MaxWait:     200 * time.Millisecond,
			// SessionTimeout stays at kafka-go's 30 s default: kfake refuses < 6 s.
		})
	}
	consume := func(r *kafka.Reader, n int) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var got []string
		for len(got) < n {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("FetchMessage after %d of %d: %v", len(got), n, err)
			}
			got = append(got, string(m.Value))
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("CommitMessages: %v", err)
			}
		}
		return got
	}

	start := time.Now()
	write("first", 10)
	r1 := newReader()
	got := consume(r1, 10)
	t.Logf("first member: joined and consumed 10 in %v", time.Since(start).Round(time.Millisecond))
	if err := r1.Close(); err != nil {
		t.Fatalf("closing the first reader: %v", err)
	}
	for _, v := range got {
		if !strings.HasPrefix(v, "first-") {
			t.Fatalf("first reader got %q", v)
		}
	}

	write("second", 5)
	r2 := newReader()
	defer r2.Close()
	start = time.Now()
	got = consume(r2, 5)
	t.Logf("second member: joined and consumed 5 in %v", time.Since(start).Round(time.Millisecond))
	for _, v := range got {
		if !strings.HasPrefix(v, "second-") {
			t.Errorf("second member of the group got %q: committed offsets were not honoured", v)
		}
	}
}

func TestKfakeRoundTrip(t *testing.T) {
	topic := UniqueTopic(t, "roundtrip")
	roundTrip(t, NewCluster(t, topic), topic)
}

func TestKfakeEmptyTopic(t *testing.T) {
	topic := UniqueTopic(t, "empty")
	brokers := NewCluster(t, topic)
	start := time.Now()
	if got := ReadAll(t, brokers, topic, 0, 10*time.Second); len(got) != 0 {
		t.Errorf("ReadAll(want=0) on an empty topic: %d messages", len(got))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ReadAll(want=0) on an empty topic took %v: it must not wait for the timeout", d)
	}
	t.Run("kcat", func(t *testing.T) {
		if got := Kcat(t, brokers, topic, 20*time.Second); len(got) != 0 {
			t.Errorf("kcat on an empty topic: %q", got)
		}
	})
}

func TestKfakeGroupCommit(t *testing.T) {
	topic := UniqueTopic(t, "group")
	groupCommit(t, NewCluster(t, topic), topic)
}

// TestIntegrationBroker runs the same checks against KAFKA_BROKERS (a real
// broker) when set.
func TestIntegrationBroker(t *testing.T) {
	Integration(t)
	rt := UniqueTopic(t, "roundtrip")
	gc := UniqueTopic(t, "group")
	brokers := Brokers(t, rt, gc)
	t.Logf("brokers: %v", brokers)
	t.Run("roundtrip", func(t *testing.T) { roundTrip(t, brokers, rt) })
	t.Run("group", func(t *testing.T) { groupCommit(t, brokers, gc) })
	if os.Getenv(EnvBrokers) != "" {
		t.Run("invalid topic", func(t *testing.T) {
			start := time.Now()
			err := CreateTopics(brokers, 1, "bad topic name!")
			if err == nil {
				t.Fatal("CreateTopics with an invalid name succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("a permanent error took %v: it must not be retried until the deadline", d)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

func TestCreateTopicsIdempotent(t *testing.T) {
	brokers := NewCluster(t)
	topic := UniqueTopic(t, "create")
	for i := 0; i < 2; i++ {
		if err := CreateTopics(brokers, 5, topic); err != nil {
			t.Fatalf("CreateTopics (call %d): %v", i+1, err)
		}
	}
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 5 {
		t.Errorf("got %d partitions, want 5", len(parts))
	}
	// (kfake accepts invalid topic names; TestIntegrationBroker checks that a
	// real broker's refusal comes back as an error.)
}

func TestUniqueTopic(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	a, b := UniqueTopic(t, "hits.raw"), UniqueTopic(t, "hits.raw")
	if a == b {
		t.Errorf("two calls returned %q", a)
	}
	for _, s := range []string{a, b, UniqueTopic(t, strings.Repeat("x/y ", 100))} {
		if !valid.MatchString(s) {
			t.Errorf("invalid topic name %q", s)
		}
	}
	if !strings.HasPrefix(a, "hits.raw-TestUniqueTopic-") {
		t.Errorf("UniqueTopic = %q, want prefix hits.raw-TestUniqueTopic-", a)
	}
}

func TestParseKcat(t *testing.T) {
	in := "3 a\nb\n-1 \n0 \n2 {}\n"
	got, err := parseKcat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a\nb", "", "", "{}"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("value %d = %q, want %q", i, got[i], want[i])
		}
	}
	if got[1] != nil || got[2] == nil {
		t.Errorf("null must be nil and empty must be non-nil: %#v %#v", got[1], got[2])
	}
	if _, err := parseKcat([]byte("5 ab\n")); err == nil {
		t.Error("truncated value parsed")
	}
}

// recTB records Skip/Fatal calls; both end the calling goroutine like the
// real ones do.
type recTB struct {
	testing.TB
	mu      sync.Mutex
	skipped bool
	failed  bool
	logs    []string
}

func (r *recTB) Helper() {}
func (r *recTB) Logf(format string, args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}
func (r *recTB) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func runRec(t *testing.T, fn func(testing.TB)) *recTB {
	r := &recTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

func TestIntegrationSwitch(t *testing.T) {
	for _, tc := range []struct {
		integration, ci string
		skip, fail      bool
	}{
		{integration: "", ci: "", skip: true},
		{integration: "0", ci: "false", skip: true},
		{integration: "", ci: "true", fail: true},
		{integration: "1", ci: "true"},
		{integration: "1", ci: ""},
	} {
		t.Run(fmt.Sprintf("integration=%q,ci=%q", tc.integration, tc.ci), func(t *testing.T) {
			t.Setenv(EnvIntegration, tc.integration)
			t.Setenv(EnvCI, tc.ci)
			r := runRec(t, Integration)
			if r.skipped != tc.skip || r.failed != tc.fail {
				t.Errorf("skipped=%v failed=%v, want skipped=%v failed=%v", r.skipped, r.failed, tc.skip, tc.fail)
			}
		})
	}
}

func TestBrokersFallback(t *testing.T) {
	t.Run("CI without KAFKA_BROKERS fails", func(t *testing.T) {
		t.Setenv(EnvBrokers, "")
		t.Setenv(EnvCI, "true")
		r := runRec(t, func(tb testing.TB) { Brokers(tb, "x") })
		if !r.failed {
			t.Errorf("Brokers did not fail under CI=true without %s", EnvBrokers)
		}
	})
	t.Run("no KAFKA_BROKERS falls back to kfake", func(t *testing.T) {
		t.Setenv(EnvBrokers, "")
		t.Setenv(EnvCI, "")
		topic := UniqueTopic(t, "fallback")
		var brokers []string
		r := runRec(t, func(tb testing.TB) { brokers = Brokers(tb, topic) })
		if r.failed || r.skipped || len(brokers) == 0 {
			t.Fatalf("failed=%v skipped=%v brokers=%v", r.failed, r.skipped, brokers)
		}
		if len(r.logs) != 1 || r.logs[0] != "KAFKA_BROKERS unset: using in-process kfake instead of a real broker" {
			t.Errorf("logs = %q", r.logs)
		}
		if err := CreateTopics(brokers, 3, topic); err != nil { // exists already: not an error
			t.Errorf("CreateTopics on an existing topic: %v", err)
		}
	})
}

// ReadAll waits out the errors of a topic whose leaders are not elected
// yet, and only those.
func TestTemporary(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("reading offsets of t/1: %w", kafka.NotLeaderForPartition): true,
		fmt.Errorf("x: %w", kafka.LeaderNotAvailable):                         true,
		fmt.Errorf("x: %w", kafka.TopicAuthorizationFailed):                   false,
		errors.New("topic t has no partitions (does it exist?)"):              false,
	} {
		if got := temporary(err); got != want {
			t.Errorf("temporary(%v) = %v, want %v", err, got, want)
		}
	}
}
