package logging

import "testing"

func TestThrottle(t *testing.T) {
	var l Throttle
	n, ok := l.Allow()
	if !ok || n != 1 {
		t.Fatalf("first event: %d %v", n, ok)
	}
	for range 10 {
		if _, ok := l.Allow(); ok {
			t.Fatal("second line within a second")
		}
	}
	l.next.Store(0)
	if n, ok := l.Allow(); !ok || n != 11 {
		t.Fatalf("after the interval: %d %v, want 11 true", n, ok)
	}
}
