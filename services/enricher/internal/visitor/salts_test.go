package visitor

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pixelstream/pixelstream/pkg/kafkatest"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"
)

// fakeClock is a settable clock for crossing midnight without waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// shiftedClock runs at real speed from base: it lets the background loop's
// real timers fire at fake times of day.
func shiftedClock(base time.Time) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return base.Add(time.Since(t0)) }
}

// day0 is a fixed day the tests are anchored to.
var day0 = DayOf(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))

func at(d Day, hms string) time.Time {
	t, err := time.Parse(time.TimeOnly, hms)
	if err != nil {
		panic(err)
	}
	return d.Start().Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
		time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond()))
}

func newStore(t *testing.T, brokers []string, topic string, now func() time.Time) *SaltStore {
	t.Helper()
	s, err := NewSaltStore(SaltConfig{
		Brokers:        brokers,
		Topic:          topic,
		Now:            now,
		RequestTimeout: 5 * time.Second,
		RetryInitial:   20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		Logger:         zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func start(t *testing.T, s *SaltStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func refresh(t *testing.T, s *SaltStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func mustSalt(t *testing.T, s *SaltStore, d Day) []byte {
	t.Helper()
	salt, ok := s.Salt(d)
	if !ok {
		t.Fatalf("no salt held for %s (held: %v)", d, s.Days())
	}
	return salt
}

func equalDays(a, b []Day) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// produceRaw writes records to partition 0 of topic as another writer
// would, for the first-record-wins test.
func produceRaw(t *testing.T, brokers []string, topic string, kv ...[2][]byte) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	for _, p := range kv { // one request per record: the offsets follow the argument order
		res, err := c.Produce(context.Background(), &kafka.ProduceRequest{
			Topic: topic, Partition: 0, RequiredAcks: kafka.RequireAll,
			Records: kafka.NewRecordReader(kafka.Record{Time: time.Now(), Key: kafka.NewBytes(p[0]), Value: kafka.NewBytes(p[1])}),
		})
		if err == nil {
			err = res.Error
		}
		if err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
	}
}

// salts returns the (day, salt) pairs in the topic in offset order, read
// with kafka-go's Reader rather than the store's own code.
func topicRecords(t *testing.T, brokers []string, topic string) [][2]string {
	t.Helper()
	var out [][2]string
	for _, m := range kafkatest.ReadAll(t, brokers, topic, 0, 15*time.Second) {
		out = append(out, [2]string{string(m.Key), string(m.Value)})
	}
	return out
}

// Scenarios, run against kfake and (with PIXELSTREAM_INTEGRATION=1) a real broker.

func scenarioConcurrentAgree(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	const n = 4
	stores := make([]*SaltStore, n)
	for i := range stores {
		stores[i] = newStore(t, brokers, topic, nil)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	gate := make(chan struct{})
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = s.Start(ctx)
		}()
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	today := DayOf(time.Now())
	want := mustSalt(t, stores[0], today)
	var candidates uint64
	for i, s := range stores {
		if got := mustSalt(t, s, today); !bytes.Equal(got, want) {
			t.Fatalf("store %d holds %x for %s, store 0 %x", i, got, today, want)
		}
		candidates += s.Stats().Candidates
	}
	// Whatever the race, the salt is the first record for the day.
	var first []byte
	var todays uint64
	for _, r := range topicRecords(t, brokers, topic) {
		if r[0] == today.String() {
			if first == nil {
				first = []byte(r[1])
			}
			todays++
		}
	}
	if !bytes.Equal(first, want) {
		t.Fatalf("the stores agree on %x but the first record for %s is %x", want, today, first)
	}
	// The same, read by an independent client (librdkafka).
	if vals := kafkatest.Kcat(t, brokers, topic, 20*time.Second); len(vals) == 0 || !bytes.Equal(vals[0], want) {
		t.Fatalf("kcat reads %d records, the first %x; the stores agree on %x", len(vals), vals, want)
	}
	// Candidates for tomorrow may have been produced if the test runs just
	// before midnight; today's must all be in the topic.
	if todays == 0 || todays > candidates {
		t.Fatalf("%d records for today in the topic, %d candidates produced", todays, candidates)
	}
	t.Logf("%d concurrent starts produced %d candidates for today", n, todays)
}

func scenarioRestart(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	clk := newFakeClock(at(day0, "12:00:00"))
	first := newStore(t, brokers, topic, clk.Now)
	start(t, first)
	want := mustSalt(t, first, day0)
	if c := first.Stats().Candidates; c != 1 {
		t.Fatalf("first start produced %d candidates, want 1", c)
	}
	first.Close()
	if _, ok := first.Salt(day0); ok {
		t.Fatal("a closed store still holds a salt")
	}

	second := newStore(t, brokers, topic, clk.Now)
	start(t, second)
	if got := mustSalt(t, second, day0); !bytes.Equal(got, want) {
		t.Fatalf("after a restart the salt is %x, before %x", got, want)
	}
	if c := second.Stats().Candidates; c != 0 {
		t.Fatalf("the restarted store produced %d candidates; it must read the existing salt", c)
	}
	if vals := kafkatest.Kcat(t, brokers, topic, 20*time.Second); len(vals) != 1 || !bytes.Equal(vals[0], want) {
		t.Fatalf("kcat reads %x from the salts topic, want the one salt %x", vals, want)
	}
}

func scenarioFirstRecordWins(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	clk := newFakeClock(at(day0, "08:00:00"))
	setup := newStore(t, brokers, topic, clk.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := setup.ensureTopic(ctx); err != nil {
		t.Fatal(err)
	}
	x, y, z := bytes.Repeat([]byte{'x'}, SaltSize), bytes.Repeat([]byte{'y'}, SaltSize), bytes.Repeat([]byte{'z'}, SaltSize)
	today, yesterday := []byte(day0.String()), []byte((day0 - 1).String())
	produceRaw(t, brokers, topic,
		[2][]byte{today, []byte("short")},         // wrong length: skipped
		[2][]byte{[]byte("2026-11-31"), x},        // not a date: skipped
		[2][]byte{[]byte((day0 - 2).String()), x}, // too old to matter
		[2][]byte{today, x},                       // the first valid one wins
		[2][]byte{yesterday, z},
		[2][]byte{today, y}, // a candidate that lost the race
	)
	s := newStore(t, brokers, topic, clk.Now)
	start(t, s)
	if got := mustSalt(t, s, day0); !bytes.Equal(got, x) {
		t.Fatalf("today's salt %q, want the first valid record %q", got, x)
	}
	if got := mustSalt(t, s, day0-1); !bytes.Equal(got, z) {
		t.Fatalf("yesterday's salt %q, want %q", got, z)
	}
	if d := s.Days(); !equalDays(d, []Day{day0 - 1, day0}) {
		t.Fatalf("held days %v", d)
	}
	st := s.Stats()
	if st.Candidates != 0 || st.InvalidRecords < 2 {
		t.Fatalf("stats %+v: want no candidates and 2 invalid records", st)
	}
}

func scenarioRollover(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	d := day0
	clk := newFakeClock(at(d-1, "23:55:00")) // inside the prepare window of d
	a := newStore(t, brokers, topic, clk.Now)
	start(t, a)
	if got := a.Days(); !equalDays(got, []Day{d - 1, d}) {
		t.Fatalf("at 23:55 the store holds %v, want today's and tomorrow's", got)
	}
	if err := a.Ready(); err != nil {
		t.Fatal(err)
	}

	clk.Set(at(d, "00:00:01"))
	refresh(t, a)
	if got := a.Days(); !equalDays(got, []Day{d - 1, d}) {
		t.Fatalf("after midnight: %v", got)
	}
	// Just after midnight, hits of both days get their own salt and the
	// session tracker can look a visitor up under yesterday's id.
	cur, _ := a.ID(proj, ip4, ua, at(d, "00:00:02"))
	prev, okPrev := a.PreviousID(proj, ip4, ua, at(d, "00:00:02"))
	late, _ := a.ID(proj, ip4, ua, at(d-1, "23:59:58"))
	if cur != Sum(mustSalt(t, a, d), proj, ip4, ua) || !okPrev || prev != late || cur == late {
		t.Fatalf("ids across midnight: cur %s prev %s (%v) late %s", cur, prev, okPrev, late)
	}

	clk.Set(at(d, "23:51:00"))
	refresh(t, a)
	if got := a.Days(); !equalDays(got, []Day{d - 1, d, d + 1}) {
		t.Fatalf("in the prepare window: %v", got)
	}
	// A second instance starting now agrees on all three.
	b := newStore(t, brokers, topic, clk.Now)
	start(t, b)
	for _, day := range []Day{d - 1, d, d + 1} {
		if !bytes.Equal(mustSalt(t, a, day), mustSalt(t, b, day)) {
			t.Fatalf("the instances disagree on %s", day)
		}
	}
	if c := b.Stats().Candidates; c != 0 {
		t.Fatalf("the second instance produced %d candidates", c)
	}

	clk.Set(at(d+1, "00:00:01"))
	refresh(t, a)
	if got := a.Days(); !equalDays(got, []Day{d, d + 1}) {
		t.Fatalf("the day before yesterday must be forgotten at midnight: %v", got)
	}
	mustSalt(t, a, d) // yesterday's still resolves

	clk.Set(at(d+2, "00:00:01"))
	refresh(t, a)
	if got := a.Days(); !equalDays(got, []Day{d + 1, d + 2}) {
		t.Fatalf("two days later: %v", got)
	}
	mustSalt(t, a, d+1)
	for _, old := range []Day{d, d - 1} {
		if _, ok := a.Salt(old); ok {
			t.Fatalf("the salt of %s (%d days old) still resolves", old, d+2-old)
		}
	}
	// A hit three days old hashes with the oldest held salt, counted.
	before := a.Stats().OlderDayFallbacks
	if id, ok := a.ID(proj, ip4, ua, at(d-1, "12:00:00")); !ok || id != Sum(mustSalt(t, a, d+1), proj, ip4, ua) {
		t.Fatalf("3-day-old hit: %s, %v", id, ok)
	}
	if a.Stats().OlderDayFallbacks != before+1 {
		t.Fatal("older_day fallback not counted")
	}
	// A fresh instance at d+2 loads yesterday's salt from the topic.
	c := newStore(t, brokers, topic, clk.Now)
	start(t, c)
	if !bytes.Equal(mustSalt(t, c, d+1), mustSalt(t, a, d+1)) || !bytes.Equal(mustSalt(t, c, d+2), mustSalt(t, a, d+2)) {
		t.Fatal("a fresh instance disagrees after two rollovers")
	}
}

func scenarioTopicSettings(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	s := newStore(t, brokers, topic, nil)
	start(t, s)

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		ConfigNames: []string{"cleanup.policy", "retention.ms", "segment.ms", "message.timestamp.type"},
	}}})
	if err != nil || len(res.Resources) != 1 || res.Resources[0].Error != nil {
		t.Fatalf("DescribeConfigs: %v %+v", err, res)
	}
	got := map[string]string{}
	for _, e := range res.Resources[0].ConfigEntries {
		got[e.ConfigName] = e.ConfigValue
	}
	want := map[string]string{
		"cleanup.policy":         "delete",
		"retention.ms":           strconv.FormatInt(SaltRetention.Milliseconds(), 10),
		"segment.ms":             strconv.FormatInt(SaltSegment.Milliseconds(), 10),
		"message.timestamp.type": "LogAppendTime",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata: %v %+v", err, md)
	}

	// A topic made with the broker's defaults (7-day segments and
	// retention) would keep salts for days: refused.
	unsafe := kafkatest.UniqueTopic(t, "salts-unsafe")
	if err := kafkatest.CreateTopics(brokers, 1, unsafe); err != nil {
		t.Fatal(err)
	}
	u := newStore(t, brokers, unsafe, nil)
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := u.Start(sctx); !errors.Is(err, ErrUnsafeTopic) {
		t.Fatalf("Start on a topic with default settings: %v, want ErrUnsafeTopic", err)
	}
	if u.Stats().Candidates != 0 {
		t.Fatal("a candidate was written to an unsafe topic")
	}
}

// scenarioBackgroundLoop checks that the goroutine prepares tomorrow's salt
// and forgets the day before yesterday on its own, on a clock shifted to a
// second before the moments that matter.
func scenarioBackgroundLoop(t *testing.T, brokers []string) {
	topic := kafkatest.UniqueTopic(t, "salts")
	d := day0
	seed := newStore(t, brokers, topic, newFakeClock(at(d-1, "12:00:00")).Now)
	start(t, seed) // the topic now holds d-1
	seed.Close()

	s := newStore(t, brokers, topic, shiftedClock(at(d, "23:49:59.5")))
	start(t, s)
	waitDays(t, s, []Day{d - 1, d, d + 1}) // prepared at 23:50 by the loop

	s2 := newStore(t, brokers, topic, shiftedClock(at(d, "23:59:59.5")))
	start(t, s2)
	if got := s2.Days(); !equalDays(got, []Day{d - 1, d, d + 1}) {
		t.Fatalf("before midnight: %v", got)
	}
	waitDays(t, s2, []Day{d, d + 1}) // forgotten by the loop just after midnight
}

func waitDays(t *testing.T, s *SaltStore, want []Day) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !equalDays(s.Days(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("held days %v, want %v", s.Days(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var scenarios = []struct {
	name string
	run  func(*testing.T, []string)
}{
	{"ConcurrentStartsAgree", scenarioConcurrentAgree},
	{"RestartReadsExistingSalt", scenarioRestart},
	{"FirstRecordWins", scenarioFirstRecordWins},
	{"MidnightRollover", scenarioRollover},
	{"TopicSettings", scenarioTopicSettings},
	{"BackgroundLoop", scenarioBackgroundLoop},
}

func TestSaltStoreKfake(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, kafkatest.NewCluster(t)) })
	}
}

// TestSaltStoreBroker runs the same scenarios against a real Kafka broker
// (KAFKA_BROKERS, from scripts/kafka/start.sh).
func TestSaltStoreBroker(t *testing.T) {
	kafkatest.Integration(t)
	brokers := kafkatest.Brokers(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, brokers) })
	}
}

// TestSaltStoreOutage stops the broker under a running store: the held
// salts stay in use, the next day falls back to the newest held salt, and
// errors are counted.
func TestSaltStoreOutage(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	d := day0
	clk := newFakeClock(at(d, "12:00:00"))
	s := newStore(t, cluster.ListenAddrs(), "salts-outage", clk.Now)
	start(t, s)
	today := mustSalt(t, s, d)
	cluster.Close()

	clk.Set(at(d, "23:55:00"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded without a broker")
	}
	clk.Set(at(d+1, "00:05:00"))
	if err := s.Refresh(ctx); err == nil {
		t.Fatal("Refresh succeeded without a broker")
	}
	if err := s.Ready(); err == nil {
		t.Fatal("Ready with only yesterday's salt")
	}
	st := s.Stats()
	if st.FetchErrors < 2 || st.LastError == nil {
		t.Fatalf("stats %+v: fetch errors not counted", st)
	}
	id, ok := s.ID(proj, ip4, ua, at(d+1, "00:05:00"))
	if !ok || id != Sum(today, proj, ip4, ua) {
		t.Fatalf("during the outage: %s, %v; want the id under the newest held salt", id, ok)
	}
	if s.Stats().NewerDayFallbacks != 1 {
		t.Fatal("newer_day fallback not counted")
	}
	// A day later still, the held salt is the day before yesterday's: it is
	// forgotten and no id can be computed (the pipeline holds the batch).
	clk.Set(at(d+2, "00:00:01"))
	_ = s.Refresh(ctx)
	if _, ok := s.ID(proj, ip4, ua, at(d+2, "00:00:01")); ok {
		t.Fatal("an id was computed with a salt older than yesterday")
	}
}

func TestStartWithoutBroker(t *testing.T) {
	s := newStore(t, []string{"127.0.0.1:1"}, "salts", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start succeeded without a broker")
	}
	if s.Stats().FetchErrors == 0 {
		t.Fatal("fetch errors not counted")
	}
}
