// Package testutil holds the polling helpers warren's own tests share and
// package warrentest builds on. It imports no warren package, so any
// package's internal tests may use it (config editing, which needs package
// config, is in internal/daemontest).
package testutil

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition; EventuallyNil,
// whose calls are usually heavier (an API call, a CLI process), checks every
// SlowPollInterval.
const (
	PollInterval     = 10 * time.Millisecond
	SlowPollInterval = 50 * time.Millisecond
)

// Eventually polls cond until it holds, failing tb if it does not within
// timeout. what names the awaited condition in the failure.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(PollInterval)
	}
}

// EventuallyNil polls f until it returns nil, failing tb with f's last
// error if it does not within timeout.
func EventuallyNil(tb testing.TB, timeout time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s: %v", timeout, err)
		}
		time.Sleep(SlowPollInterval)
	}
}
