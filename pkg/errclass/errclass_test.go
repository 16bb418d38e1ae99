package errclass

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestClassify(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name      string
		err       error
		permanent bool
		reason    string
	}{
		{"nil", nil, false, "none"},
		{"plain", base, false, "retryable"},
		{"marked", Permanent(base), true, "permanent"},
		{"wrapped mark", fmt.Errorf("stage: %w", Permanent(base)), true, "permanent"},
		{"too large", kafka.MessageSizeTooLarge, true, "permanent"},
		{"wrapped kafka", fmt.Errorf("write: %w", kafka.InvalidRecord), true, "permanent"},
		{"leader moved", kafka.NotLeaderForPartition, false, "retryable"},
		{"timeout", context.DeadlineExceeded, false, "timeout"},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false, "network"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			if tc.err != nil && IsRetryable(tc.err) == tc.permanent {
				t.Errorf("IsRetryable disagrees with IsPermanent")
			}
			if got := Reason(tc.err); got != tc.reason {
				t.Errorf("Reason = %q, want %q", got, tc.reason)
			}
		})
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent hides the cause")
	}
}
