package logging

import (
	"sync/atomic"
	"time"
)

// Throttle lets one log line through per second and counts the events it
// held back, so a flood of drops costs a counter increment, not a log
// write. The zero value is ready to use and it is safe for concurrent use.
type Throttle struct {
	next   atomic.Int64 // unix nanos before which lines are suppressed
	events atomic.Int64
}

// Allow records one event and reports whether to log now, with the number
// of events since the last line that was let through (this one included).
func (l *Throttle) Allow() (int64, bool) {
	l.events.Add(1)
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		return 0, false
	}
	return l.events.Swap(0), true
}
