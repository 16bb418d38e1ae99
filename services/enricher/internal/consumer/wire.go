package consumer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The fetch request and response are encoded here (Fetch v11, the last
// version before flexible encoding; brokers from 2.3 to 4.x serve it) so
// that the response's record batches reach decodeBatches as bytes.
// Metadata, offsets and group membership go through kafka-go.

const (
	apiFetch     = 1
	fetchVersion = 11
	// maxResponse bounds a response read into memory: MaxBytes is a soft
	// limit (the first batch always comes whole), so leave room beyond it.
	maxResponseSlack = 8 << 20
)

// errWire reports a response that does not parse.
var errWire = errors.New("consumer: malformed fetch response")

// fetchPartition is one partition of a fetch request.
type fetchPartition struct {
	partition int32
	offset    int64
	maxBytes  int32
}

// brokerConn is one connection to a partition leader, used by one fetch
// loop: a request, then its response.
type brokerConn struct {
	conn     net.Conn
	r        *bufio.Reader
	req      []byte
	resp     []byte
	corr     int32
	clientID string
	hdr      [8]byte // size and correlation id of a response
}

func dialBroker(ctx context.Context, addr, clientID string) (*brokerConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("consumer: dial %s: %w", addr, err)
	}
	return &brokerConn{conn: c, r: bufio.NewReaderSize(c, 64<<10), clientID: clientID}, nil
}

func (b *brokerConn) Close() error { return b.conn.Close() }

// fetch sends one fetch request and returns the response body (after the
// correlation id), valid until the next call.
func (b *brokerConn) fetch(ctx context.Context, topic string, ps []fetchPartition, maxWait time.Duration, minBytes, maxBytes int32) ([]byte, error) {
	b.corr++
	b.req = appendFetchRequest(b.req[:0], b.corr, b.clientID, topic, ps, maxWait, minBytes, maxBytes)
	deadline := time.Now().Add(maxWait + 30*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = b.conn.SetDeadline(deadline)
	// Cancelling ctx unblocks the read by moving the deadline.
	stop := context.AfterFunc(ctx, func() { _ = b.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := b.conn.Write(b.req); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("consumer: sending fetch: %w", err))
	}
	hdr := b.hdr[:]
	if _, err := io.ReadFull(b.r, hdr); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("consumer: reading fetch response: %w", err))
	}
	size := int(int32(binary.BigEndian.Uint32(hdr)))
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != b.corr {
		return nil, fmt.Errorf("%w: correlation id %d, want %d", errWire, corr, b.corr)
	}
	if size < 4 || size-4 > int(maxBytes)+maxResponseSlack {
		return nil, fmt.Errorf("%w: response of %d bytes", errWire, size)
	}
	if cap(b.resp) < size-4 {
		b.resp = make([]byte, size-4)
	}
	b.resp = b.resp[:size-4]
	if _, err := io.ReadFull(b.r, b.resp); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("consumer: reading fetch response: %w", err))
	}
	return b.resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// appendFetchRequest appends a size-prefixed Fetch v11 request for one topic.
func appendFetchRequest(b []byte, corr int32, clientID, topic string, ps []fetchPartition, maxWait time.Duration, minBytes, maxBytes int32) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, apiFetch)
	b = binary.BigEndian.AppendUint16(b, fetchVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(max(maxWait/time.Millisecond, 0)))
	b = binary.BigEndian.AppendUint32(b, uint32(minBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	b = append(b, 0)                                 // isolation level: read uncommitted, as kafka-go's Reader
	b = binary.BigEndian.AppendUint32(b, 0)          // session id 0 and
	b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // epoch -1: a full fetch, no session
	b = binary.BigEndian.AppendUint32(b, 1)          // one topic
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
	for _, p := range ps {
		b = binary.BigEndian.AppendUint32(b, uint32(p.partition))
		b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // current leader epoch: unknown
		b = binary.BigEndian.AppendUint64(b, uint64(p.offset))
		b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // log start offset: not a follower
		b = binary.BigEndian.AppendUint32(b, uint32(p.maxBytes))
	}
	b = binary.BigEndian.AppendUint32(b, 0) // no forgotten topics
	b = appendString(b, "")                 // rack id
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// fetchedPartition is one partition of a fetch response.
type fetchedPartition struct {
	topic         string
	partition     int32
	errorCode     int16
	highWatermark int64
	records       []byte
}

// parseFetchResponse walks a Fetch v11 response body (after the
// correlation id), calling fn for each partition; the records slice aliases
// body.
func parseFetchResponse(body []byte, fn func(*fetchedPartition) error) (errorCode int16, err error) {
	r := reader{b: body}
	r.int32()             // throttle time
	errorCode = r.int16() // top-level error
	r.int32()             // session id
	for range r.count() { // topics
		topic := r.string() //
		for range r.count() {
			fp := fetchedPartition{topic: topic, partition: r.int32(), errorCode: r.int16(), highWatermark: r.int64()}
			r.int64() // last stable offset
			r.int64() // log start offset
			for range r.count() {
				r.int64() // aborted transaction: producer id
				r.int64() // and first offset
			}
			r.int32() // preferred read replica
			fp.records = r.bytes()
			if r.err != nil {
				return 0, r.err
			}
			if err := fn(&fp); err != nil {
				return 0, err
			}
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	return errorCode, nil
}

// reader reads big-endian fields; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: needs %d bytes, %d left", errWire, n, len(r.b))
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) int16() int16 {
	if s := r.take(2); s != nil {
		return int16(binary.BigEndian.Uint16(s))
	}
	return 0
}

func (r *reader) int32() int32 {
	if s := r.take(4); s != nil {
		return int32(binary.BigEndian.Uint32(s))
	}
	return 0
}

func (r *reader) int64() int64 {
	if s := r.take(8); s != nil {
		return int64(binary.BigEndian.Uint64(s))
	}
	return 0
}

// count reads an array length; -1 (null) is 0; a length that cannot fit
// in what is left is an error, not an allocation.
func (r *reader) count() int {
	n := r.int32()
	if n < 0 {
		return 0
	}
	if int(n) > len(r.b) {
		if r.err == nil {
			r.err = fmt.Errorf("%w: array of %d in %d bytes", errWire, n, len(r.b))
		}
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.int16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n)))
}

func (r *reader) bytes() []byte {
	n := r.int32()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}
