package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// position is where the next fetch of one partition starts.
type position struct {
	partition int
	offset    int64 // kafka.FirstOffset or kafka.LastOffset until resolved
}

// errReposition ends a round of fetch loops so their positions are
// resolved again (an offset out of range).
var errReposition = errors.New("consumer: offset out of range")

// fetchGeneration fetches the assigned partitions until the generation
// ends: one loop per leader broker, all restarted (from where each
// partition got to) after any of them fails, with fresh metadata.
func (c *Consumer) fetchGeneration(ctx context.Context, genID int32, assigned []kafka.PartitionAssignment) {
	pos := make([]position, len(assigned))
	for i, a := range assigned {
		pos[i] = position{partition: a.ID, offset: a.Offset}
	}
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := c.fetchRound(ctx, genID, pos)
		if time.Since(start) > 4*c.cfg.BackoffMax {
			failures = 0 // a failure after a long healthy round starts over
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errReposition) {
			continue // resolved at the start of the next round
		}
		failures++
		if !c.retryAfter(ctx, fmt.Errorf("generation %d: %w", genID, err), failures) {
			return
		}
	}
}

// fetchRound resolves symbolic offsets, groups the partitions by leader and
// runs one fetch loop per leader until one of them fails.
func (c *Consumer) fetchRound(ctx context.Context, genID int32, pos []position) error {
	if err := c.resolve(ctx, pos); err != nil {
		return err
	}
	leaders, addrs, err := c.leaders(ctx)
	if err != nil {
		return err
	}
	byLeader := map[int][]*position{}
	for i := range pos {
		l, ok := leaders[pos[i].partition]
		if !ok {
			return fmt.Errorf("consumer: no leader for %s/%d", c.cfg.Topic, pos[i].partition)
		}
		byLeader[l] = append(byLeader[l], &pos[i])
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(byLeader))
	var wg sync.WaitGroup
	for id, ps := range byLeader {
		wg.Go(func() { errs <- c.fetchLoop(rctx, genID, addrs[id], ps) })
	}
	err = <-errs
	cancel()
	wg.Wait()
	return err
}

// resolve turns FirstOffset/LastOffset positions (no committed offset
// yet, or reset after OFFSET_OUT_OF_RANGE) into offsets.
func (c *Consumer) resolve(ctx context.Context, pos []position) error {
	var reqs []kafka.OffsetRequest
	for _, p := range pos {
		if p.offset < 0 {
			reqs = append(reqs, kafka.OffsetRequest{Partition: p.partition, Timestamp: p.offset})
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: reqs}})
	if err != nil {
		return fmt.Errorf("consumer: list offsets: %w", err)
	}
	got := map[int]kafka.PartitionOffsets{}
	for _, po := range res.Topics[c.cfg.Topic] {
		if po.Error != nil {
			return fmt.Errorf("consumer: list offsets of %s/%d: %w", c.cfg.Topic, po.Partition, po.Error)
		}
		got[po.Partition] = po
	}
	for i := range pos {
		if pos[i].offset >= 0 {
			continue
		}
		po, ok := got[pos[i].partition]
		if !ok {
			return fmt.Errorf("consumer: no offsets listed for %s/%d", c.cfg.Topic, pos[i].partition)
		}
		if pos[i].offset == kafka.LastOffset {
			pos[i].offset = po.LastOffset
		} else {
			pos[i].offset = po.FirstOffset
		}
	}
	return nil
}

// leaders maps the topic's partitions to their leaders' broker IDs, and
// the IDs to addresses.
func (c *Consumer) leaders(ctx context.Context) (map[int]int, map[int]string, error) {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.cfg.Topic}})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer: metadata: %w", err)
	}
	addrs := make(map[int]string, len(md.Brokers))
	for _, b := range md.Brokers {
		addrs[b.ID] = net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
	}
	for _, t := range md.Topics {
		if t.Name != c.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return nil, nil, fmt.Errorf("consumer: metadata of %s: %w", c.cfg.Topic, t.Error)
		}
		out := make(map[int]int, len(t.Partitions))
		for _, p := range t.Partitions {
			if _, ok := addrs[p.Leader.ID]; ok && p.Error == nil {
				out[p.ID] = p.Leader.ID
			}
		}
		return out, addrs, nil
	}
	return nil, nil, fmt.Errorf("consumer: topic %s not in metadata", c.cfg.Topic)
}

// fetchLoop fetches ps, all led by the broker at addr, in one request per
// round trip, and queues their records in offset order.
func (c *Consumer) fetchLoop(ctx context.Context, genID int32, addr string, ps []*position) error {
	conn, err := dialBroker(ctx, addr, "pixelstream-enricher-consumer")
	if err != nil {
		return err
	}
	defer conn.Close()
	byPartition := make(map[int32]*position, len(ps))
	for _, p := range ps {
		byPartition[int32(p.partition)] = p
	}
	partMax := int32(max(c.cfg.MaxBytes/len(ps), 64<<10))
	req := make([]fetchPartition, len(ps))
	emit := func(m kafka.Message) error {
		select {
		case c.msgs <- item{msg: m, gen: genID}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	take := func(fp *fetchedPartition) error {
		p := byPartition[fp.partition]
		if fp.topic != c.cfg.Topic || p == nil {
			return nil
		}
		return c.takePartition(p, fp, emit)
	}
	for {
		for i, p := range ps {
			req[i] = fetchPartition{partition: int32(p.partition), offset: p.offset, maxBytes: partMax}
		}
		body, err := conn.fetch(ctx, c.cfg.Topic, req, c.cfg.MaxWait, int32(c.cfg.MinBytes), int32(c.cfg.MaxBytes))
		c.fetches.Add(1)
		if err != nil {
			return err
		}
		code, err := parseFetchResponse(body, take)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("consumer: fetch from %s: %w", addr, kafka.Error(code))
		}
	}
}

// takePartition queues one partition's records from a fetch response.
func (c *Consumer) takePartition(p *position, fp *fetchedPartition, emit func(kafka.Message) error) error {
	switch code := kafka.Error(fp.errorCode); {
	case fp.errorCode == 0:
	case code == kafka.OffsetOutOfRange:
		// Retention deleted records this group had not read, or the topic
		// was recreated: start again from the oldest record kept.
		c.log.Warn("offset out of range: resuming from the oldest record kept",
			zap.String("topic", c.cfg.Topic), zap.Int("partition", p.partition), zap.Int64("offset", p.offset))
		p.offset = kafka.FirstOffset
		return errReposition
	default:
		return fmt.Errorf("consumer: fetch %s/%d: %w", c.cfg.Topic, p.partition, code)
	}
	next, err := decodeBatches(fp.records, p.offset, c.cfg.Topic, p.partition, func(m kafka.Message) error {
		m.HighWaterMark = fp.highWatermark
		if err := emit(m); err != nil {
			return err
		}
		p.offset = m.Offset + 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("consumer: %s/%d: %w", c.cfg.Topic, p.partition, err)
	}
	p.offset = max(p.offset, next)
	c.setLag(p.partition, fp.highWatermark-p.offset)
	return nil
}
