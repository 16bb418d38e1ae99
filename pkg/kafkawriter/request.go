package kafkawriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/segmentio/kafka-go/protocol/rawproduce"
)

// slotState tracks one partition's records through the rounds of send.
type slotState struct {
	slot     int
	off, end int // the chunk in flight: the slot's indexes [off:end)
	attempts int // failed tries of this chunk
	solo     bool
	err      error // this round's outcome
}

// send writes every slot's records and reports those that fail for good.
//
// It works in rounds, as the Java producer does: each round sends one
// produce request per partition leader carrying the next chunk of every
// partition it leads, so a call costs each broker one round trip rather
// than one per partition. A partition's next chunk waits for the previous
// one's acknowledgement (order), and a chunk that fails with a temporary
// error is tried again in the next round, after a backoff, up to
// MaxAttempts; after a permanent error the partition's remaining records
// fail without being sent (they would land after a gap).
func (w *Writer) send(ctx context.Context, msgs []kafka.Message, g *grouping, fail func([]int32, error)) {
	var live []*slotState
	for s := range g.slots() {
		_, _, idx := g.slot(s)
		if len(idx) == 0 {
			continue
		}
		live = append(live, &slotState{slot: s, end: w.chunkEnd(msgs, idx, 0)})
	}
	for len(live) > 0 {
		if n := maxAttempts(live); n > 0 {
			t := time.NewTimer(backoff(n, w.cfg.BackoffMin, w.cfg.BackoffMax))
			select {
			case <-ctx.Done():
				t.Stop()
				for _, st := range live {
					_, _, idx := g.slot(st.slot)
					fail(idx[st.off:], ctx.Err())
				}
				return
			case <-t.C:
			}
		}
		w.round(ctx, msgs, g, live)
		next := live[:0]
		for _, st := range live {
			_, _, idx := g.slot(st.slot)
			switch err := st.err; {
			case err == nil:
				st.off, st.attempts = st.end, 0
				if st.off == len(idx) {
					continue
				}
				st.end = w.chunkEnd(msgs, idx, st.off)
			case errors.Is(err, errWholeRequest) && !st.solo:
				// A request spanning partitions was refused before
				// reaching a broker (the layout changed under it):
				// send each of its partitions on its own.
				st.solo = true
			case retryable(err) && st.attempts+1 < w.cfg.MaxAttempts && ctx.Err() == nil:
				st.attempts++
			default:
				fail(idx[st.off:], err)
				continue
			}
			next = append(next, st)
		}
		live = next
	}
}

func maxAttempts(live []*slotState) int {
	n := 0
	for _, st := range live {
		n = max(n, st.attempts)
	}
	return n
}

// errWholeRequest marks a multi-partition request the transport refused
// before sending (its partitions' leaders disagree with its cached layout).
var errWholeRequest = errors.New("kafkawriter: request refused before sending")

// round sends one request per leader (one per slot for solo slots) and
// records each slot's outcome in its err.
func (w *Writer) round(ctx context.Context, msgs []kafka.Message, g *grouping, live []*slotState) {
	var requests [][]*slotState
	byLeader := map[int32]int{}
	for _, st := range live {
		if st.solo {
			requests = append(requests, []*slotState{st})
			continue
		}
		l := g.leader[st.slot]
		i, ok := byLeader[l]
		if !ok {
			i = len(requests)
			byLeader[l] = i
			requests = append(requests, nil)
		}
		requests[i] = append(requests[i], st)
	}
	var wg sync.WaitGroup
	for i, r := range requests {
		if i == len(requests)-1 {
			w.request(ctx, msgs, g, r)
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.request(ctx, msgs, g, r) }()
	}
	wg.Wait()
}

// request sends the current chunks of sts as one produce request.
func (w *Writer) request(ctx context.Context, msgs []kafka.Message, g *grouping, sts []*slotState) {
	req, bs, err := w.produceRequest(msgs, g, sts, time.Now())
	if err != nil {
		for _, st := range sts {
			st.err = err
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WriteTimeout)
	defer cancel()
	m, err := w.cfg.Transport.RoundTrip(ctx, w.client.Addr, req)
	// A round trip that ended on its context may have left the request
	// queued or half written on a connection that still reads the
	// batches: those go to the collector, not back to the pool.
	if err == nil || ctx.Err() == nil {
		putBatches(bs)
	}
	if err != nil {
		// A request the transport refused before sending (its layout
		// puts these partitions on different leaders) fails with
		// rawproduce's error type, not produce's.
		var refused *rawproduce.Error
		if len(sts) > 1 && errors.As(err, &refused) {
			err = fmt.Errorf("%w: %w", errWholeRequest, err)
		}
		for _, st := range sts {
			st.err = err
		}
		return
	}
	resp, ok := m.(*produceAPI.Response)
	if !ok {
		for _, st := range sts {
			st.err = fmt.Errorf("kafkawriter: unexpected response %T", m)
		}
		return
	}
	for _, st := range sts {
		topic, p, _ := g.slot(st.slot)
		answered := false
		for _, rt := range resp.Topics {
			if rt.Topic != topic {
				continue
			}
			for _, rp := range rt.Partitions {
				if int(rp.Partition) == p {
					st.err = partitionError(rp.ErrorCode, rp.ErrorMessage)
					answered = true
				}
			}
		}
		if !answered {
			// Built only when needed: formatting it for every partition
			// of every request, to be overwritten by the answer, was
			// ~0.7 % of a saturated edge's CPU.
			st.err = fmt.Errorf("kafkawriter: no answer for %s/%d: %w", topic, p, kafka.UnknownTopicOrPartition)
		}
	}
}

// produceRequest encodes the current chunks of sts into pooled batches and
// returns the request that carries them as raw record sets, and the
// batches, which go back to the pool once the transport is done with them.
// The transport only copies the batches out: it never reads msgs, so the
// caller may reuse them as soon as WriteMessages returns, even while the
// transport is still sending a request that its context gave up on.
func (w *Writer) produceRequest(msgs []kafka.Message, g *grouping, sts []*slotState, now time.Time) (*rawproduce.Request, []*batch, error) {
	req := &rawproduce.Request{
		Acks:    int16(w.cfg.RequiredAcks),
		Timeout: int32(w.cfg.WriteTimeout / time.Millisecond),
	}
	bs := make([]*batch, 0, len(sts))
	scratch := scratches.Get().(*[]byte)
	defer scratches.Put(scratch)
	for _, st := range sts {
		topic, p, idx := g.slot(st.slot)
		b := batches.Get().(*batch)
		bs = append(bs, b)
		if err := b.encode(msgs, idx[st.off:st.end], w.cfg.Compression, now, scratch); err != nil {
			putBatches(bs)
			return nil, nil, err
		}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != topic {
			req.Topics = append(req.Topics, rawproduce.RequestTopic{Topic: topic})
		}
		t := &req.Topics[len(req.Topics)-1]
		t.Partitions = append(t.Partitions, rawproduce.RequestPartition{
			Partition: int32(p),
			RecordSet: protocol.RawRecordSet{Reader: &b.reader},
		})
	}
	return req, bs, nil
}

// partitionError is kafka-go's makeError: the kafka.Error for code, with
// the broker's message when it sent one.
func partitionError(code int16, message string) error {
	if code == 0 {
		return nil
	}
	if message == "" {
		return kafka.Error(code)
	}
	return fmt.Errorf("%w: %s", kafka.Error(code), message)
}
