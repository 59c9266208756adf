package tunnel

import "time"

// SetRetryBackoff sets the restore retry backoff for a test and returns the
// function that puts it back.
func SetRetryBackoff(lo, hi time.Duration) (restore func()) {
	oldMin, oldMax := retryMin, retryMax
	retryMin, retryMax = lo, hi
	return func() { retryMin, retryMax = oldMin, oldMax }
}
