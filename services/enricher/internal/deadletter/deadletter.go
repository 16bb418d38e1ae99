// Package deadletter builds the records sent to the dead-letter topic: the
// original bytes, untouched, with headers that say why and where from, so
// an operator can inspect, fix and replay them.
package deadletter

import (
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header names on every dead-letter record.
const (
	HeaderReason   = "pixelstream-error"       // why it was rejected (bounded text)
	HeaderClass    = "pixelstream-error-class" // one of the Reason* constants
	HeaderSource   = "pixelstream-source"      // topic/partition/offset of the original
	HeaderFailedAt = "pixelstream-failed-at"   // RFC 3339 time of rejection
)

// Reason classes, also used as the metric label.
const (
	ReasonDecode   = "decode"   // not a RawHit protobuf
	ReasonInvalid  = "invalid"  // decodes but lacks required fields
	ReasonEnrich   = "enrich"   // an enrichment step failed or panicked
	ReasonRejected = "rejected" // the broker permanently refused the enriched record
)

// maxReasonLen bounds the reason header: a decoder error can quote input.
const maxReasonLen = 512

// New returns the dead letter for in, addressed to topic. The value and key
// are the original bytes.
func New(in kafka.Message, topic, class, reason string, now time.Time) kafka.Message {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	src := make([]byte, 0, len(in.Topic)+24)
	src = append(src, in.Topic...)
	src = append(src, '/')
	src = strconv.AppendInt(src, int64(in.Partition), 10)
	src = append(src, '/')
	src = strconv.AppendInt(src, in.Offset, 10)
	return kafka.Message{
		Topic: topic,
		Key:   in.Key,
		Value: in.Value,
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderClass, Value: []byte(class)},
			{Key: HeaderSource, Value: src},
			{Key: HeaderFailedAt, Value: now.UTC().AppendFormat(nil, time.RFC3339)},
		},
	}
}

// Header returns the value of the named header of m, or "".
func Header(m kafka.Message, name string) string {
	for _, h := range m.Headers {
		if h.Key == name {
			return string(h.Value)
		}
	}
	return ""
}
