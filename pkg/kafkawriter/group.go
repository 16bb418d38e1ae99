package kafkawriter

import (
	"context"
	"errors"
	"sync"

	"github.com/segmentio/kafka-go"
)

// grouping orders a call's message indexes by destination: a slot is one
// partition of one topic, and a counting sort keeps the call's order within
// each slot. Its slices are pooled.
type grouping struct {
	topics []string // distinct topics of the call
	counts []int    // partitions of topics[t]
	first  []int    // first slot of topics[t]
	slotOf []int32  // slot of message i
	order  []int32  // message indexes, slot by slot
	start  []int32  // slot s's indexes are order[start[s]:start[s+1]]
	leader []int32  // broker id leading slot s (-1: unknown)
}

var groupings = sync.Pool{New: func() any { return new(grouping) }}

var errTopic = errors.New("kafkawriter: a message needs a topic, in Config.Topic or Message.Topic, not both")

// group assigns every message its topic's partition with kafka-go's
// Murmur2Balancer and sorts the indexes by slot.
func (w *Writer) group(ctx context.Context, msgs []kafka.Message) (*grouping, error) {
	g := groupings.Get().(*grouping)
	g.topics = g.topics[:0]
	g.slotOf = resize(g.slotOf, len(msgs))
	for i := range msgs {
		t, err := w.topicIndex(g, &msgs[i])
		if err != nil {
			g.release()
			return nil, err
		}
		g.slotOf[i] = int32(t) // the topic's index for now
	}
	if err := w.layout(ctx, g); err != nil {
		g.release()
		return nil, err
	}
	slots := len(g.leader)
	g.start = resize(g.start, slots+1)
	clear(g.start)
	parts := w.partitionList(slots)
	for i := range msgs {
		t := g.slotOf[i]
		p := w.balancer.Balance(msgs[i], parts[:g.counts[t]]...)
		s := g.first[t] + p
		g.slotOf[i] = int32(s)
		g.start[s+1]++
	}
	for s := 1; s <= slots; s++ {
		g.start[s] += g.start[s-1]
	}
	g.order = resize(g.order, len(msgs))
	for i := range msgs {
		s := g.slotOf[i]
		g.order[g.start[s]] = int32(i)
		g.start[s]++
	}
	// Filling advanced each start to the next slot's: shift back by one.
	copy(g.start[1:], g.start[:slots])
	g.start[0] = 0
	return g, nil
}

func (w *Writer) topicIndex(g *grouping, m *kafka.Message) (int, error) {
	topic := w.cfg.Topic
	switch {
	case topic != "" && m.Topic != "", topic == "" && m.Topic == "":
		return 0, errTopic
	case topic == "":
		topic = m.Topic
	}
	for t, name := range g.topics {
		if name == topic {
			return t, nil
		}
	}
	g.topics = append(g.topics, topic)
	return len(g.topics) - 1, nil
}

// slots is the number of slots: every partition of every topic of the call.
func (g *grouping) slots() int { return len(g.start) - 1 }

// slot returns slot s's topic, partition and message indexes.
func (g *grouping) slot(s int) (string, int, []int32) {
	t := len(g.first) - 1
	for g.first[t] > s {
		t--
	}
	return g.topics[t], s - g.first[t], g.order[g.start[s]:g.start[s+1]]
}

func (g *grouping) release() { groupings.Put(g) }

func resize(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func resizeInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

// partitionList returns 0..n-1, the partition list kafka-go's balancers
// take; the slice is shared and read-only.
func (w *Writer) partitionList(n int) []int {
	w.partsMu.Lock()
	defer w.partsMu.Unlock()
	if len(w.partsList) < n {
		w.partsList = make([]int, n)
		for i := range w.partsList {
			w.partsList[i] = i
		}
	}
	return w.partsList[:n]
}

// messageSize is kafka-go's Message.totalSize, which is unexported: the
// size it checks BatchBytes against.
func messageSize(m *kafka.Message) int {
	n := 4 + 1 + 1 + 4 + len(m.Key) + 4 + len(m.Value) + 8
	n += varintLen(int64(len(m.Headers)))
	for _, h := range m.Headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + varintLen(int64(len(h.Value))) + len(h.Value)
	}
	return n
}

func varintLen(v int64) int {
	u := uint64((v << 1) ^ (v >> 63))
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
