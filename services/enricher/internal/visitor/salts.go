package visitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// DefaultSaltTopic is the default name of the salts topic.
const DefaultSaltTopic = "pixelstream.salts"

// Settings the salts topic is created with. Kafka deletes whole segments,
// and only once the newest record of a segment is older than retention.ms,
// so the segment must roll well within a day for one day's salt to be
// deleted on time: see docs/visitors.md.
const (
	// SaltRetention is retention.ms of the salts topic: 48 hours.
	SaltRetention = 48 * time.Hour
	// SaltSegment is segment.ms of the salts topic: one hour, so that each
	// day's salt ends up in a segment of its own.
	SaltSegment = time.Hour
	// maxSafeSegment is the largest segment.ms accepted on an existing
	// topic: above it, two days' salts can share a segment and the older
	// one outlives the 48 h bound by up to a day.
	maxSafeSegment = 12 * time.Hour
)

// Defaults of SaltConfig.
const (
	// DefaultPrepareAhead: tomorrow's salt is fetched or created from
	// 23:50 UTC, leaving ten minutes of retries before it is needed.
	DefaultPrepareAhead = 10 * time.Minute
	// DefaultRequestTimeout bounds one Kafka request.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultRetryInitial is the first backoff after a failed refresh.
	DefaultRetryInitial = time.Second
	// DefaultRetryMax caps the backoff between failed refreshes.
	DefaultRetryMax = time.Minute
)

// ErrUnsafeTopic is returned by Start when the salts topic exists with
// settings that would keep salts longer than 48 hours (compaction, a longer
// retention, or segments that do not roll within a day). The enricher
// refuses to run on it rather than silently break its privacy promise; fix
// it with kafka-configs.sh --alter (see docs/visitors.md).
var ErrUnsafeTopic = errors.New("visitor: the salts topic would keep salts longer than 48 h")

// SaltConfig configures a SaltStore. Only Brokers is required.
type SaltConfig struct {
	// Brokers are the Kafka bootstrap brokers (host:port).
	Brokers []string
	// Topic is the single-partition salts topic; DefaultSaltTopic when empty.
	Topic string
	// ReplicationFactor is used when the store creates the topic; 0 or -1
	// means the broker's default.replication.factor.
	ReplicationFactor int
	// PrepareAhead is how long before 00:00 UTC the next day's salt is
	// fetched or created, so that the hot path never waits for Kafka at
	// midnight. DefaultPrepareAhead when 0.
	PrepareAhead time.Duration
	// RequestTimeout bounds each Kafka request. DefaultRequestTimeout when 0.
	RequestTimeout time.Duration
	// RetryInitial and RetryMax bound the backoff between failed refreshes.
	// Defaults DefaultRetryInitial and DefaultRetryMax.
	RetryInitial, RetryMax time.Duration
	// Logger receives fetch errors and topic warnings; a no-op when nil.
	Logger *zap.Logger
	// Now is the clock that decides which days' salts are needed and held:
	// time.Now when nil. Tests set a fake clock to cross midnight.
	Now func() time.Time
	// Rand is the source of new salts: crypto/rand when nil.
	Rand io.Reader
}

// saltEntry is one held day's salt, expanded for hashing.
type saltEntry struct {
	day  Day
	salt [SaltSize]byte
	key  key
}

// saltSet is an immutable snapshot of the held salts, oldest day first. The
// hot path loads it with one atomic read; refreshes publish a new one.
type saltSet struct {
	entries []saltEntry
}

// SaltStore holds the daily salts that all enricher instances agree on
// through the salts topic, and computes visitor ids with them.
//
// Concurrency: ID, PreviousID, AppendID, Salt and Stats are safe to call from
// any goroutine at any time and never touch the network; Refresh is
// serialised internally; Start and Close are meant to be called once each.
type SaltStore struct {
	cfg    SaltConfig
	log    *zap.Logger
	tr     *kafka.Transport
	client *kafka.Client

	set   atomic.Pointer[saltSet]
	setMu sync.Mutex // serialises install and forget (readers only Load)

	refreshMu  sync.Mutex // one Refresh at a time
	topicReady bool       // guarded by refreshMu

	lifeMu  sync.Mutex
	started bool
	closed  bool
	done    chan struct{} // closed when the refresh loop has returned

	stopCtx context.Context // cancelled by Close: ends Start's retries and the loop
	stop    context.CancelFunc

	fetchErrors  atomic.Uint64
	candidates   atomic.Uint64
	invalid      atomic.Uint64
	newerDay     atomic.Uint64
	olderDay     atomic.Uint64
	unavailable  atomic.Uint64
	lastErrMu    sync.Mutex
	lastErr      error
	lastErrAt    time.Time
	configIssues atomic.Uint64
}

// NewSaltStore returns a store for cfg; it holds no salt until Start.
func NewSaltStore(cfg SaltConfig) (*SaltStore, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("visitor: SaltConfig.Brokers is empty")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultSaltTopic
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	if cfg.PrepareAhead == 0 {
		cfg.PrepareAhead = DefaultPrepareAhead
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = DefaultRetryInitial
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	switch {
	case cfg.PrepareAhead < 0 || cfg.PrepareAhead >= 12*time.Hour:
		return nil, fmt.Errorf("visitor: PrepareAhead must be in (0, 12h), got %v", cfg.PrepareAhead)
	case cfg.RequestTimeout < 0 || cfg.RetryInitial < 0 || cfg.RetryMax < cfg.RetryInitial:
		return nil, errors.New("visitor: timeouts must be positive and RetryMax >= RetryInitial")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	tr := &kafka.Transport{
		ClientID:    "pixelstream-enricher-salts",
		DialTimeout: cfg.RequestTimeout,
		IdleTimeout: time.Minute,
		MetadataTTL: 10 * time.Second,
	}
	s := &SaltStore{
		cfg:    cfg,
		log:    cfg.Logger.With(zap.String("salt_topic", cfg.Topic)),
		tr:     tr,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.RequestTimeout, Transport: tr},
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.set.Store(&saltSet{})
	return s, nil
}

// Start creates the salts topic if it is missing, loads yesterday's salt if
// the topic has one and today's (creating a candidate if there is none),
// retrying with backoff until today's salt is held or ctx ends, and then
// starts a background goroutine that prepares each next day's salt
// PrepareAhead before midnight and forgets salts older than yesterday. ctx
// bounds only the startup: the goroutine runs until Close. Start fails at
// once with ErrUnsafeTopic on a topic that would keep salts too long.
func (s *SaltStore) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	if s.started || s.closed {
		s.lifeMu.Unlock()
		return errors.New("visitor: SaltStore started twice or after Close")
	}
	s.started = true
	s.lifeMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()

	backoff := s.cfg.RetryInitial
	for {
		err := s.Refresh(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, ErrUnsafeTopic) {
			return err
		}
		s.log.Warn("salts: startup refresh failed, retrying", zap.Error(err), zap.Duration("backoff", backoff))
		if !sleepCtx(ctx, backoff) {
			return fmt.Errorf("visitor: no salt for today (%s) before startup ended: %w (last error: %v)",
				DayOf(s.cfg.Now()), ctx.Err(), err)
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}

	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return errors.New("visitor: SaltStore closed during Start")
	}
	s.done = make(chan struct{})
	go s.loop()
	return nil
}

// Close stops the background goroutine, closes the Kafka connections and
// forgets every salt (ID and AppendID then report false). It returns nil;
// the error is there for io.Closer.
func (s *SaltStore) Close() error {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return nil
	}
	s.closed = true
	done := s.done
	s.lifeMu.Unlock()

	s.stop()
	if done != nil {
		<-done
	}
	// Wait for a Refresh still running from Start, then drop the connections.
	s.refreshMu.Lock()
	s.setMu.Lock()
	s.set.Store(&saltSet{})
	s.setMu.Unlock()
	s.refreshMu.Unlock()
	s.tr.CloseIdleConnections()
	return nil
}

// loop refreshes at the next moment something is due (the prepare time of
// tomorrow's salt, midnight, or a retry after an error) until Close.
func (s *SaltStore) loop() {
	defer close(s.done)
	var backoff time.Duration
	for {
		now := s.cfg.Now()
		wait := s.nextWake(now)
		if backoff > 0 {
			wait = min(wait, backoff)
		}
		if !sleepCtx(s.stopCtx, wait) {
			return
		}
		now = s.cfg.Now()
		// The refresh must not hold up forgetting at midnight: its deadline
		// is at most one second past the next midnight.
		deadline := min(3*s.cfg.RequestTimeout, (DayOf(now)+1).Start().Sub(now)+time.Second)
		ctx, cancel := context.WithTimeout(s.stopCtx, deadline)
		err := s.Refresh(ctx)
		cancel()
		s.forget(DayOf(s.cfg.Now()))
		switch {
		case err == nil:
			backoff = 0
		case s.stopCtx.Err() != nil:
			return
		default:
			if backoff == 0 {
				backoff = s.cfg.RetryInitial
			} else {
				backoff = min(2*backoff, s.cfg.RetryMax)
			}
			s.log.Warn("salts: refresh failed; the held salts stay in use", zap.Error(err), zap.Duration("retry_in", backoff))
		}
	}
}

// nextWake returns how long to sleep before the next scheduled refresh: the
// prepare time of tomorrow's salt if it is still ahead, else just past the
// next midnight (to forget the day before yesterday), capped at an hour so
// a wall-clock jump is noticed.
func (s *SaltStore) nextWake(now time.Time) time.Duration {
	midnight := (DayOf(now) + 1).Start()
	prepare := midnight.Add(-s.cfg.PrepareAhead)
	var wait time.Duration
	if now.Before(prepare) {
		wait = prepare.Sub(now)
	} else {
		wait = midnight.Sub(now) + 100*time.Millisecond
	}
	return max(min(wait, time.Hour), 10*time.Millisecond)
}

// Refresh makes sure the store holds the salts it needs at the current
// clock time: today's, yesterday's if the topic has it, and from
// PrepareAhead before midnight tomorrow's. Missing ones are read from the
// topic; for today and tomorrow a random candidate is produced (acks=all)
// when the topic has none, and the first record for the day in offset order
// is taken, whoever wrote it. It first forgets salts older than yesterday.
// The background goroutine calls it; it is exported for tests and for a
// readiness probe that wants to retry at once.
func (s *SaltStore) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.stopCtx.Err() != nil {
		return errors.New("visitor: SaltStore closed")
	}
	now := s.cfg.Now()
	today := DayOf(now)
	s.forget(today)

	create := []Day{today}
	if !now.Before((today + 1).Start().Add(-s.cfg.PrepareAhead)) {
		create = append(create, today+1)
	}
	missing := !s.holds(today - 1) // yesterday is only read, never created
	for _, d := range create {
		if !s.holds(d) {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	err := s.fetch(ctx, today, create)
	if err != nil {
		s.fetchErrors.Add(1)
		s.lastErrMu.Lock()
		s.lastErr, s.lastErrAt = err, time.Now()
		s.lastErrMu.Unlock()
	}
	return err
}

// fetch reads the topic, installs the first salt of each day from yesterday
// to tomorrow, and produces candidates for the days in create that have
// none. It reads the whole partition: it holds two or three days of a few
// 32-byte records.
func (s *SaltStore) fetch(ctx context.Context, today Day, create []Day) error {
	if !s.topicReady {
		if err := s.ensureTopic(ctx); err != nil {
			return err
		}
		s.topicReady = true
	}
	found, err := s.readFirsts(ctx, today-1, today+1)
	if err != nil {
		return err
	}
	s.install(found, today)

	var need []Day
	for _, d := range create {
		if !s.holds(d) {
			need = append(need, d)
		}
	}
	if len(need) == 0 {
		return nil
	}
	if err := s.produceCandidates(ctx, need); err != nil {
		return err
	}
	// Re-read: another instance's candidate may have landed before ours,
	// and only the first one in the partition counts.
	found, err = s.readFirsts(ctx, today-1, today+1)
	if err != nil {
		return err
	}
	s.install(found, today)
	for _, d := range need {
		if !s.holds(d) {
			return fmt.Errorf("visitor: the candidate salt for %s was acknowledged but not read back", d)
		}
	}
	return nil
}

// ensureTopic creates the salts topic (one partition, delete policy, 48 h
// retention, hourly segments, broker timestamps) if it is missing and checks
// the settings of an existing one.
func (s *SaltStore) ensureTopic(ctx context.Context) error {
	res, err := s.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             s.cfg.Topic,
		NumPartitions:     1,
		ReplicationFactor: s.cfg.ReplicationFactor,
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "delete"},
			{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(SaltRetention.Milliseconds(), 10)},
			{ConfigName: "segment.ms", ConfigValue: strconv.FormatInt(SaltSegment.Milliseconds(), 10)},
			// The broker's clock, not the producer's, dates each record, so a
			// producer with a skewed clock cannot delay deletion.
			{ConfigName: "message.timestamp.type", ConfigValue: "LogAppendTime"},
		},
	}}})
	if err != nil {
		return fmt.Errorf("visitor: creating salts topic %s: %w", s.cfg.Topic, err)
	}
	if terr := res.Errors[s.cfg.Topic]; terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
		return fmt.Errorf("visitor: creating salts topic %s: %w", s.cfg.Topic, terr)
	} else if terr == nil {
		s.log.Info("salts: created the salts topic")
	}
	return s.checkTopic(ctx)
}

// checkTopic refuses a topic whose settings keep salts longer than 48 h. If
// the configuration cannot be read (e.g. no DescribeConfigs ACL), it warns
// and goes on: the topic may well be right.
func (s *SaltStore) checkTopic(ctx context.Context) error {
	res, err := s.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: s.cfg.Topic,
			ConfigNames:  []string{"cleanup.policy", "retention.ms", "segment.ms"},
		}},
	})
	if err == nil && len(res.Resources) == 1 && res.Resources[0].Error != nil {
		err = res.Resources[0].Error
	}
	if err != nil || len(res.Resources) != 1 {
		s.configIssues.Add(1)
		s.log.Warn("salts: cannot read the salts topic's settings; make sure it deletes salts after 48 h",
			zap.Error(err))
		return nil
	}
	var problems []string
	for _, e := range res.Resources[0].ConfigEntries {
		switch e.ConfigName {
		case "cleanup.policy":
			if e.ConfigValue != "delete" {
				problems = append(problems, "cleanup.policy="+e.ConfigValue+" (want delete: compaction keeps the last salt of every day forever)")
			}
		case "retention.ms":
			ms, perr := strconv.ParseInt(e.ConfigValue, 10, 64)
			if perr != nil || ms < 0 || ms > SaltRetention.Milliseconds() {
				problems = append(problems, "retention.ms="+e.ConfigValue+" (want at most 172800000)")
			}
		case "segment.ms":
			ms, perr := strconv.ParseInt(e.ConfigValue, 10, 64)
			if perr != nil || ms <= 0 || ms > maxSafeSegment.Milliseconds() {
				problems = append(problems, "segment.ms="+e.ConfigValue+" (want at most 43200000; 3600000 recommended)")
			}
		}
	}
	if len(problems) > 0 {
		s.configIssues.Add(1)
		return fmt.Errorf("%w: topic %s has %s", ErrUnsafeTopic, s.cfg.Topic, strings.Join(problems, ", "))
	}
	return nil
}

// readFirsts reads partition 0 from its first offset to the high-water mark
// seen by the first fetch and returns, for each day from lo to hi, the value
// of the first valid record with that day's key. Invalid records (a key that
// is not a date, a value that is not SaltSize bytes) are skipped by every
// instance alike, so they cannot make instances disagree.
func (s *SaltStore) readFirsts(ctx context.Context, lo, hi Day) (map[Day][SaltSize]byte, error) {
	found := make(map[Day][SaltSize]byte, 3)
	offset := kafka.FirstOffset
	end := int64(-1)
	for end < 0 || offset < end {
		res, err := s.client.Fetch(ctx, &kafka.FetchRequest{
			Topic:     s.cfg.Topic,
			Partition: 0,
			Offset:    offset,
			MinBytes:  1,
			MaxBytes:  1 << 20,
			MaxWait:   100 * time.Millisecond,
		})
		if err != nil {
			return nil, fmt.Errorf("visitor: reading salts topic %s: %w", s.cfg.Topic, err)
		}
		if res.Error != nil {
			return nil, fmt.Errorf("visitor: reading salts topic %s at offset %d: %w", s.cfg.Topic, offset, res.Error)
		}
		if end < 0 {
			end = res.HighWatermark
			if offset == kafka.FirstOffset {
				offset = res.LogStartOffset
			}
		}
		progressed := false
		for {
			rec, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("visitor: decoding salts topic %s: %w", s.cfg.Topic, err)
			}
			if rec.Offset < offset {
				continue // a batch may start before the offset asked for
			}
			offset = rec.Offset + 1
			progressed = true
			s.consider(rec, found, lo, hi)
		}
		if !progressed && offset < end {
			return nil, fmt.Errorf("visitor: reading salts topic %s: no records at offset %d below the high-water mark %d",
				s.cfg.Topic, offset, end)
		}
	}
	return found, nil
}

// consider records rec in found if it is the first valid salt for its day.
func (s *SaltStore) consider(rec *kafka.Record, found map[Day][SaltSize]byte, lo, hi Day) {
	k, kerr := kafka.ReadAll(rec.Key)
	v, verr := kafka.ReadAll(rec.Value)
	day, derr := ParseDay(string(k))
	if kerr != nil || verr != nil || derr != nil || len(v) != SaltSize {
		s.invalid.Add(1)
		s.log.Warn("salts: skipping an invalid record", zap.Int64("offset", rec.Offset),
			zap.Int("key_bytes", len(k)), zap.Int("value_bytes", len(v)))
		return
	}
	if day < lo || day > hi {
		return
	}
	if _, ok := found[day]; !ok {
		found[day] = [SaltSize]byte(v)
	}
}

// produceCandidates writes one random candidate salt per day with acks=all,
// so that a candidate that was acknowledged survives a leader change and
// every instance later reads the same first record.
func (s *SaltStore) produceCandidates(ctx context.Context, days []Day) error {
	recs := make([]kafka.Record, len(days))
	now := time.Now() // the broker overrides it (LogAppendTime); retention needs a real time either way
	for i, d := range days {
		v := make([]byte, SaltSize)
		if _, err := io.ReadFull(s.cfg.Rand, v); err != nil {
			return fmt.Errorf("visitor: drawing a salt: %w", err)
		}
		recs[i] = kafka.Record{Time: now, Key: kafka.NewBytes([]byte(d.String())), Value: kafka.NewBytes(v)}
	}
	res, err := s.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        s.cfg.Topic,
		Partition:    0,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(recs...),
	})
	if err == nil && res != nil {
		err = res.Error
		for _, rerr := range res.RecordErrors {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("visitor: producing candidate salts for %v: %w", days, err)
	}
	s.candidates.Add(uint64(len(days)))
	s.log.Info("salts: produced candidate salts", zap.Stringers("days", days))
	return nil
}

// holds reports whether the salt of d is held.
func (s *SaltStore) holds(d Day) bool {
	for _, e := range s.set.Load().entries {
		if e.day == d {
			return true
		}
	}
	return false
}

// install adds the found salts of days from today-1 on that are not held yet
// (a held day's salt never changes: the first record stays the first) and
// publishes a new snapshot.
func (s *SaltStore) install(found map[Day][SaltSize]byte, today Day) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := s.set.Load().entries
	entries := slices.Clone(old)
	for d, salt := range found {
		if d < today-1 || s.holds(d) {
			continue
		}
		e := saltEntry{day: d, salt: salt}
		e.key = expand(&e.salt)
		entries = append(entries, e)
	}
	if len(entries) == len(old) {
		return
	}
	slices.SortFunc(entries, func(a, b saltEntry) int { return int(a.day - b.day) })
	s.set.Store(&saltSet{entries: entries})
}

// forget drops the salts of days before yesterday. The old snapshot becomes
// garbage; Go gives no way to wipe every copy of memory, so "forgotten"
// means unreachable, and the Kafka copy is what retention deletes.
func (s *SaltStore) forget(today Day) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	cur := s.set.Load().entries
	i := 0
	for i < len(cur) && cur[i].day < today-1 {
		i++
	}
	if i > 0 {
		s.set.Store(&saltSet{entries: slices.Clone(cur[i:])})
	}
}

// entryFor returns the salt to hash a hit received at day d with: the newest
// held salt whose day is not after d. A hit newer than every held salt (the
// next day's salt could not be fetched) uses the newest held one; a hit
// older than every held salt (received more than a day ago: its own salt is
// deleted by design) uses the oldest held one. Both are counted. It returns
// nil when no salt is held at all.
func (s *SaltStore) entryFor(d Day) *saltEntry {
	es := s.set.Load().entries
	if len(es) == 0 {
		s.unavailable.Add(1)
		return nil
	}
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].day <= d {
			if es[i].day != d {
				s.newerDay.Add(1)
			}
			return &es[i]
		}
	}
	s.olderDay.Add(1)
	return &es[0]
}

// ID returns the visitor id of (project, ip, ua) for a hit received at at,
// under the salt of at's UTC day, or the fallback salt described at
// entryFor and in docs/visitors.md. It reports false only when the store
// holds no salt at all (not started, closed, or every salt forgotten during
// an outage of more than a day): the caller should then hold the batch and
// retry rather than emit hits without ids. It does not allocate.
func (s *SaltStore) ID(project []byte, ip netip.Addr, ua []byte, at time.Time) (ID, bool) {
	e := s.entryFor(DayOf(at))
	if e == nil {
		return ID{}, false
	}
	return e.key.sum(project, ip, ua), true
}

// PreviousID returns the visitor id of (project, ip, ua) under the salt of
// the day before at's UTC day, exactly (no fallback), or false if that salt
// is not held. The session tracker looks a visitor up by it shortly after
// midnight, so that a session continues although the id changed.
func (s *SaltStore) PreviousID(project []byte, ip netip.Addr, ua []byte, at time.Time) (ID, bool) {
	d := DayOf(at) - 1
	es := s.set.Load().entries
	for i := range es {
		if es[i].day == d {
			return es[i].key.sum(project, ip, ua), true
		}
	}
	return ID{}, false
}

// AppendID appends the 32-hex-digit visitor id of (project, ip, ua) for a hit
// received at at to dst, as ID does, and reports false (dst unchanged) when
// no salt is held. It allocates only when dst lacks capacity.
func (s *SaltStore) AppendID(dst []byte, project []byte, ip netip.Addr, ua []byte, at time.Time) ([]byte, bool) {
	id, ok := s.ID(project, ip, ua, at)
	if !ok {
		return dst, false
	}
	return id.AppendHex(dst), true
}

// Salt returns a copy of the salt held for day d, exactly (no fallback).
func (s *SaltStore) Salt(d Day) ([]byte, bool) {
	for _, e := range s.set.Load().entries {
		if e.day == d {
			return slices.Clone(e.salt[:]), true
		}
	}
	return nil, false
}

// Ready returns nil when today's salt (by the store's clock) is held, and
// otherwise an error naming the newest held day and the last refresh error:
// for /readyz, and for alerting when ids fall back to another day's salt.
func (s *SaltStore) Ready() error {
	today := DayOf(s.cfg.Now())
	if s.holds(today) {
		return nil
	}
	days := s.Days()
	s.lastErrMu.Lock()
	lastErr := s.lastErr
	s.lastErrMu.Unlock()
	if len(days) == 0 {
		return fmt.Errorf("visitor: no salt held (last error: %v)", lastErr)
	}
	return fmt.Errorf("visitor: no salt for %s yet, using %s's (last error: %v)", today, days[len(days)-1], lastErr)
}

// Days returns the days whose salts are held, oldest first.
func (s *SaltStore) Days() []Day {
	es := s.set.Load().entries
	days := make([]Day, len(es))
	for i := range es {
		days[i] = es[i].day
	}
	return days
}

// SaltStats are the store's counters since NewSaltStore.
type SaltStats struct {
	// FetchErrors counts failed refreshes (Kafka unreachable, topic errors).
	FetchErrors uint64
	// Candidates counts candidate salts this instance produced.
	Candidates uint64
	// InvalidRecords counts records of the salts topic skipped as malformed
	// (counted each time the topic is read).
	InvalidRecords uint64
	// NewerDayFallbacks counts ids computed with an older day's salt because
	// the hit's day was newer than every held salt.
	NewerDayFallbacks uint64
	// OlderDayFallbacks counts ids computed with the oldest held salt because
	// the hit was older than every held salt.
	OlderDayFallbacks uint64
	// Unavailable counts ids not computed because no salt was held.
	Unavailable uint64
	// TopicConfigIssues counts unreadable or unsafe salts topic settings.
	TopicConfigIssues uint64
	// Days are the days held, oldest first.
	Days []Day
	// LastError is the last refresh error (nil if none).
	LastError error
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
}

// Stats returns the counters and the held days.
func (s *SaltStore) Stats() SaltStats {
	st := SaltStats{
		FetchErrors:       s.fetchErrors.Load(),
		Candidates:        s.candidates.Load(),
		InvalidRecords:    s.invalid.Load(),
		NewerDayFallbacks: s.newerDay.Load(),
		OlderDayFallbacks: s.olderDay.Load(),
		Unavailable:       s.unavailable.Load(),
		TopicConfigIssues: s.configIssues.Load(),
		Days:              s.Days(),
	}
	s.lastErrMu.Lock()
	st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
	s.lastErrMu.Unlock()
	return st
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
