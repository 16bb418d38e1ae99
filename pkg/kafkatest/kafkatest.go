// Package kafkatest gives tests a Kafka cluster and independent ways to look
// at what was written to it.
//
// Two kinds of broker are supported:
//
//   - an in-process kfake cluster (github.com/twmb/franz-go/pkg/kfake) that
//     speaks the real wire protocol on loopback TCP: [NewCluster]. Fast, no
//     setup, good for unit tests; it is not Apache Kafka.
//   - a real Apache Kafka broker named by the KAFKA_BROKERS environment
//     variable (comma separated host:port list), normally the one started by
//     scripts/kafka/start.sh: [Brokers].
//
// Integration tests start with [Integration], which skips them unless
// PIXELSTREAM_INTEGRATION=1 and, under CI=true, fails instead of skipping so
// that CI can never pass by skipping everything. They then get their broker
// from [Brokers], which uses KAFKA_BROKERS when set, fails under CI=true when
// it is not, and otherwise falls back to kfake with a log line.
//
// [ReadAll] reads topics back with kafka-go; [Kcat] reads them with the
// independent kcat binary (librdkafka), for tests that must not trust our own
// client library.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables read by this package.
const (
	// EnvBrokers names a real broker list ("host:port,host:port").
	EnvBrokers = "KAFKA_BROKERS"
	// EnvIntegration enables integration tests when set to "1".
	EnvIntegration = "PIXELSTREAM_INTEGRATION"
	// EnvCI is "true" on CI, where skipping is not allowed.
	EnvCI = "CI"
)

// DefaultPartitions is the partition count of the topics created by
// NewCluster and Brokers.
const DefaultPartitions = 3

// isCI reports whether the tests run under CI (CI=true).
func isCI() bool { return os.Getenv(EnvCI) == "true" }

// NewCluster starts an in-process kfake Kafka cluster (one broker) listening on loopback,
// creates the given topics with DefaultPartitions partitions each, registers
// its shutdown with t.Cleanup, and returns the broker addresses. kfake's
// minimum consumer group session timeout is 6 s, so do not configure readers
// below that.
func NewCluster(t testing.TB, topics ...string) []string {
	t.Helper()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(DefaultPartitions),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(DefaultPartitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Brokers returns brokers for an integration test with the given topics
// created (DefaultPartitions partitions each; an existing topic is not an
// error; choosing unique names, e.g. with UniqueTopic, is the caller's job).
// With KAFKA_BROKERS set it uses that real broker. Without it, under CI=true,
// it fails the test: CI must run against a real broker. Otherwise it logs that
// it falls back to kfake and returns NewCluster(t, topics...).
func Brokers(t testing.TB, topics ...string) []string {
	t.Helper()
	brokers := splitBrokers(os.Getenv(EnvBrokers))
	if len(brokers) == 0 {
		if isCI() {
			t.Fatalf("kafkatest: %s is unset but CI=true: CI requires a real broker "+
				"(start one with scripts/kafka/start.sh and export the KAFKA_BROKERS it prints)", EnvBrokers)
			return nil
		}
		t.Logf("%s unset: using in-process kfake instead of a real broker", EnvBrokers)
		return NewCluster(t, topics...)
	}
	if len(topics) > 0 {
		if err := CreateTopics(brokers, DefaultPartitions, topics...); err != nil {
			t.Fatalf("kafkatest: creating topics %v on %s=%s: %v", topics, EnvBrokers, strings.Join(brokers, ","), err)
		}
	}
	return brokers
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Integration is the one switch for integration tests: call it first. It skips
// the test unless PIXELSTREAM_INTEGRATION=1; when CI=true and the switch is not
// set it fails the test instead of skipping, so CI cannot silently skip them.
func Integration(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvIntegration) == "1" {
		return
	}
	if isCI() {
		t.Fatalf("kafkatest: CI=true but %s is not 1: integration tests must run on CI (set %s=1)",
			EnvIntegration, EnvIntegration)
		return
	}
	t.Skipf("integration test: set %s=1 to run it (with %s for a real broker)", EnvIntegration, EnvBrokers)
}

// UniqueTopic returns a valid Kafka topic name unique to this test run:
// base, the sanitised test name and a random suffix, joined by '-'.
func UniqueTopic(t testing.TB, base string) string {
	t.Helper()
	var suffix [5]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("kafkatest: random topic suffix: %v", err)
	}
	name := sanitizeTopic(t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	topic := sanitizeTopic(base) + "-" + name + "-" + strconv.FormatInt(time.Now().Unix(), 36) + hex.EncodeToString(suffix[:])
	if len(topic) > 249 { // Kafka's limit
		topic = topic[len(topic)-249:]
	}
	return topic
}

// sanitizeTopic keeps the characters Kafka allows in topic names ([a-zA-Z0-9._-])
// and replaces the others with '-'.
func sanitizeTopic(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			b[i] = '-'
		}
	}
	return string(b)
}

// createTopicsTimeout bounds CreateTopics, including waiting for leaders.
const createTopicsTimeout = 30 * time.Second

// CreateTopics creates the topics with the given number of partitions and
// replication factor 1 on the cluster reachable through brokers, using
// kafka-go's Conn against the controller. A topic that already exists counts
// as created (whatever its partition count). It returns once metadata shows
// every topic with all partitions led, or an error after 30 s.
func CreateTopics(brokers []string, partitions int, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	if len(brokers) == 0 {
		return errors.New("kafkatest: CreateTopics: no brokers")
	}
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	ctx, cancel := context.WithTimeout(context.Background(), createTopicsTimeout)
	defer cancel()

	configs := make([]kafka.TopicConfig, len(topics))
	for i, topic := range topics {
		configs[i] = kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}
	}
	var lastErr error
	for {
		err := createOnController(ctx, brokers, configs)
		if err == nil {
			break
		}
		lastErr = err
		var kerr kafka.Error
		if errors.As(err, &kerr) && !kerr.Temporary() {
			return fmt.Errorf("kafkatest: creating topics %v: %w", topics, err)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return fmt.Errorf("kafkatest: creating topics %v: %w", topics, lastErr)
		}
	}
	for {
		err := topicsLed(ctx, brokers, topics)
		if err == nil {
			return nil
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return fmt.Errorf("kafkatest: topics %v created but not ready: %w", topics, err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// dialAny connects to the first broker of the list that answers.
func dialAny(ctx context.Context, brokers []string) (*kafka.Conn, error) {
	var errs []error
	for _, b := range brokers {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := kafka.DialContext(dctx, "tcp", b)
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func createOnController(ctx context.Context, brokers []string, configs []kafka.TopicConfig) error {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("finding the controller: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cconn, err := kafka.DialContext(dctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return fmt.Errorf("dialing the controller: %w", err)
	}
	defer cconn.Close()
	_ = cconn.SetDeadline(time.Now().Add(15 * time.Second))
	err = cconn.CreateTopics(configs...)
	if errors.Is(err, kafka.TopicAlreadyExists) {
		err = nil
	}
	return err
}

// topicsLed returns nil once every topic has partitions, all with a known leader.
func topicsLed(ctx context.Context, brokers []string, topics []string) error {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	parts, err := conn.ReadPartitions(topics...)
	if err != nil {
		return err
	}
	count := map[string]int{}
	for _, p := range parts {
		if p.Leader.Host == "" {
			return fmt.Errorf("topic %s partition %d has no leader yet", p.Topic, p.ID)
		}
		count[p.Topic]++
	}
	for _, topic := range topics {
		if count[topic] == 0 {
			return fmt.Errorf("topic %s not in metadata yet", topic)
		}
	}
	return nil
}

// partitionBounds returns, per partition of topic, the first offset and the
// high-water mark (the offset the next record will get).
func partitionBounds(ctx context.Context, brokers []string, topic string) (map[int][2]int64, error) {
	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions (does it exist?)", topic)
	}
	bounds := make(map[int][2]int64, len(parts))
	for _, p := range parts {
		addr := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lc, err := kafka.DialLeader(dctx, "tcp", addr, topic, p.ID)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dialing the leader of %s/%d: %w", topic, p.ID, err)
		}
		_ = lc.SetDeadline(time.Now().Add(5 * time.Second))
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading offsets of %s/%d: %w", topic, p.ID, err)
		}
		bounds[p.ID] = [2]int64{first, last}
	}
	return bounds, nil
}

// temporary reports whether err is a Kafka error that passes by itself.
func temporary(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && kerr.Temporary()
}

// ReadAll reads topic from the beginning of every partition with kafka-go
// (one partition reader each, no consumer group, nothing committed) and
// returns the messages ordered by partition, then offset. With want > 0 it
// stops as soon as it has want messages; with want <= 0 it reads up to the
// high-water marks that the partitions had when it started. Either way it
// stops at the timeout and returns what it has: check len() in the test. It
// fails the test only when the topic's partitions cannot be found.
func ReadAll(t testing.TB, brokers []string, topic string, want int, timeout time.Duration) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	bounds, err := partitionBounds(ctx, brokers, topic)
	// A topic created moments ago may not have its leaders elected yet
	// (NotLeaderForPartition, LeaderNotAvailable): those errors pass, so
	// wait for them within the timeout.
	for temporary(err) && sleepCtx(ctx, 100*time.Millisecond) {
		bounds, err = partitionBounds(ctx, brokers, topic)
	}
	if err != nil {
		t.Fatalf("kafkatest: ReadAll %s: %v", topic, err)
		return nil
	}

	var (
		mu  sync.Mutex
		out []kafka.Message
		wg  sync.WaitGroup
	)
	for p, b := range bounds {
		if want <= 0 && b[1] <= b[0] {
			continue // empty partition
		}
		wg.Add(1)
		go func(partition int, end int64) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:   brokers,
				Topic:     topic,
				Partition: partition,
				MinBytes:  1,
				MaxBytes:  10 << 20,
				MaxWait:   200 * time.Millisecond,
			})
			defer r.Close()
			if err := r.SetOffset(kafka.FirstOffset); err != nil {
				t.Logf("kafkatest: ReadAll %s/%d: %v", topic, partition, err)
				return
			}
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Logf("kafkatest: ReadAll %s/%d: %v", topic, partition, err)
					}
					return
				}
				mu.Lock()
				out = append(out, m)
				n := len(out)
				mu.Unlock()
				if want > 0 && n >= want {
					cancel()
					return
				}
				if want <= 0 && m.Offset+1 >= end {
					return
				}
			}
		}(p, b[1])
	}
	wg.Wait()

	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	if want > 0 && len(out) > want {
		// Several partition readers may race past want together.
		t.Logf("kafkatest: ReadAll %s: read %d messages (wanted %d)", topic, len(out), want)
	}
	return out
}
