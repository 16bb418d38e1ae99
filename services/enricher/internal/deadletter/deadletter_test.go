package deadletter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestNewKeepsOriginalBytes(t *testing.T) {
	in := kafka.Message{Topic: "hits.raw", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte{0xff, 0x00, 0x01}}
	now := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	dl := New(in, "hits.deadletter", ReasonDecode, strings.Repeat("x", 2000), now)
	if dl.Topic != "hits.deadletter" || !bytes.Equal(dl.Value, in.Value) || !bytes.Equal(dl.Key, in.Key) {
		t.Fatalf("dead letter lost the original: %+v", dl)
	}
	tests := map[string]string{
		HeaderClass:    ReasonDecode,
		HeaderSource:   "hits.raw/2/41",
		HeaderFailedAt: "2026-11-26T20:00:00Z",
	}
	for h, want := range tests {
		if got := Header(dl, h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if got := Header(dl, HeaderReason); len(got) != maxReasonLen {
		t.Errorf("reason not bounded: %d bytes", len(got))
	}
	if Header(dl, "absent") != "" {
		t.Error("absent header has a value")
	}
}
