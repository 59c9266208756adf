package api

// Query parameters and fields shared by the message and topic routes.

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warren-p2p/warren/client"
)

// checkQuery refuses query parameters the endpoint does not know, so a
// misspelt one is not silently ignored.
func checkQuery(q url.Values, known ...string) error {
	for k := range q {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			return invalidf("unknown query parameter %q: expected %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// parseBuffer parses the buffer query parameter of a subscribe endpoint.
func parseBuffer(s string, defaultBuffer int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > client.MaxSubscribeBuffer {
		return 0, invalidf("bad buffer %q: expected 0 (the default, %d) to %d messages", s, defaultBuffer, client.MaxSubscribeBuffer)
	}
	return n, nil
}

// parseCount parses the n query parameter of a subscribe endpoint.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, invalidf("bad n %q: expected a number of messages >= 0 (0: no limit)", s)
	}
	return n, nil
}

// parseTimeoutMS checks a timeout_ms field: 1 to client.MaxTimeout in
// milliseconds, or 0 for def (the config setting named setting).
func parseTimeoutMS(ms int64, def time.Duration, setting string) (time.Duration, error) {
	switch {
	case ms < 0 || ms > client.MaxTimeout.Milliseconds():
		return 0, invalidf("bad timeout_ms %d: expected 1 to %d milliseconds (%s), or 0 for %s", ms, client.MaxTimeout.Milliseconds(), client.MaxTimeout, setting)
	case ms == 0:
		return def, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}
