package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fakeTB records a Fatalf and ends the goroutine, as testing's does.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func run(f func(tb testing.TB)) string {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() { defer close(done); f(tb) }()
	<-done
	return tb.msg
}

func TestEventually(t *testing.T) {
	n := 0
	if msg := run(func(tb testing.TB) { Eventually(tb, time.Second, "n to reach 3", func() bool { n++; return n >= 3 }) }); msg != "" || n != 3 {
		t.Fatalf("met condition: %q after %d polls", msg, n)
	}
	if msg := run(func(tb testing.TB) { Eventually(tb, 30*time.Millisecond, "never", func() bool { return false }) }); msg != "timed out after 30ms waiting for never" {
		t.Fatalf("timeout message %q", msg)
	}
	if msg := run(func(tb testing.TB) {
		EventuallyNil(tb, 30*time.Millisecond, func() error { return errors.New("still down") })
	}); msg != "timed out after 30ms: still down" {
		t.Fatalf("EventuallyNil message %q", msg)
	}
}
