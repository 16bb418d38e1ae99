package visitor

import (
	"testing"

	"go.uber.org/goleak"
)

// SaltStore starts a goroutine and kafka-go connection pools: every test must
// leave none behind (Close stops them).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
