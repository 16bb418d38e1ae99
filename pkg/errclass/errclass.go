// Package errclass classifies pipeline errors as permanent or retryable, so a
// stage can decide between sending a record to the dead-letter topic and
// retrying it with backoff (the OpenTelemetry collector's consumererror idea).
// An unclassified error is retryable: retrying a permanent failure costs
// time, dropping a transient one loses data.
package errclass

import (
	"errors"
	"net"
	"syscall"

	"github.com/segmentio/kafka-go"
)

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as permanent: retrying the same input cannot succeed.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanent{err}
}

// IsPermanent reports whether err (or anything it wraps) was marked with
// Permanent, or is a Kafka error that no retry can fix (a record too large,
// an invalid record, a topic or configuration that does not allow it).
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize,
			kafka.RecordListTooLarge, kafka.InvalidRecord,
			kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
			kafka.InvalidTopic, kafka.UnsupportedVersion, kafka.UnsupportedCompressionType,
			kafka.InvalidRequiredAcks:
			return true
		}
	}
	return false
}

// IsRetryable reports whether err may succeed if tried again: the opposite
// of IsPermanent for non-nil errors.
func IsRetryable(err error) bool { return err != nil && !IsPermanent(err) }

// Reason returns a short, bounded label for metrics: "permanent",
// "timeout", "network" or "retryable".
func Reason(err error) string {
	switch {
	case err == nil:
		return "none"
	case IsPermanent(err):
		return "permanent"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return "network"
	}
	return "retryable"
}
