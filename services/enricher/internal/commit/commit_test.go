package commit

import (
	"context"
	"errors"
	"testing"

	"github.com/pixelstream/pixelstream/pkg/errclass"
	"github.com/pixelstream/pixelstream/services/enricher/internal/pipeline"
	"github.com/segmentio/kafka-go"
)

type recorder struct {
	got []kafka.Message
	err error
}

func (r *recorder) CommitMessages(_ context.Context, msgs ...kafka.Message) error {
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, msgs...)
	return nil
}

func TestCommit(t *testing.T) {
	in := []kafka.Message{{Partition: 0, Offset: 1}, {Partition: 1, Offset: 7}}
	tests := []struct {
		name       string
		acked      []bool
		commitErr  error
		wantErr    bool
		permanent  bool
		wantCommit int
	}{
		{"all acked", []bool{true, true}, nil, false, false, 2},
		{"one pending", []bool{true, false}, nil, true, true, 0},
		{"never produced", nil, nil, true, true, 0},
		{"broker error retryable", []bool{true, true}, kafka.RebalanceInProgress, true, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{err: tc.commitErr}
			b := &pipeline.Batch{In: in, Out: make([]kafka.Message, 2), Acked: tc.acked}
			err := Stage{C: r}.Process(context.Background(), b)
			if (err != nil) != tc.wantErr || errclass.IsPermanent(err) != tc.permanent || len(r.got) != tc.wantCommit {
				t.Fatalf("err=%v permanent=%v committed=%d", err, errclass.IsPermanent(err), len(r.got))
			}
			if tc.commitErr != nil && !errors.Is(err, tc.commitErr) {
				t.Fatalf("cause lost: %v", err)
			}
		})
	}
}
