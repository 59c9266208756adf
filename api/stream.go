package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ndjson writes a streaming response of one JSON object per line, flushed
// after each, for endpoints that stream received messages.
type ndjson struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
}

// newNDJSON starts a 200 application/x-ndjson response.
func newNDJSON(w http.ResponseWriter) *ndjson {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return &ndjson{w: w, rc: rc, enc: json.NewEncoder(w)}
}

// Send writes one line and flushes it; an error means the client is gone.
func (n *ndjson) Send(v any) error {
	if err := n.enc.Encode(v); err != nil {
		return err
	}
	return n.rc.Flush()
}

// startStream starts an NDJSON response with the record first. Until stop
// is called, ctx ending unblocks its writes: a client that stops reading
// blocks them (the backpressure of a subscription). An error means the
// client is gone; stop must be called either way.
func startStream(ctx context.Context, w http.ResponseWriter, first any) (nd *ndjson, stop func() bool, err error) {
	nd = newNDJSON(w)
	stop = context.AfterFunc(ctx, func() { _ = nd.rc.SetWriteDeadline(time.Now()) })
	return nd, stop, nd.Send(first)
}

// dropRecord is the {"dropped": N} record of a subscription stream, encoded
// as MessageEvent and TopicEvent encode theirs.
type dropRecord struct {
	Dropped uint64 `json:"dropped"`
}

// endBatch ends a batch of a subscription stream's messages: a dropped
// record when the subscription's drops have changed since *last, then a
// flush. An error means the client is gone.
//
// A drop happens only while the subscription's buffer is full, so a
// message always follows the last drop and its record is never left unsent.
func (n *ndjson) endBatch(dropped uint64, last *uint64) error {
	if dropped != *last {
		*last = dropped
		if err := n.enc.Encode(dropRecord{Dropped: dropped}); err != nil {
			return err
		}
	}
	return n.rc.Flush()
}

// parseBuffer parses the buffer query parameter of a subscribe endpoint.
func parseBuffer(s string, defaultBuffer int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxSubscribeBuffer {
		return 0, fmt.Errorf("bad buffer %q: expected 0 (the default, %d) to %d messages", s, defaultBuffer, MaxSubscribeBuffer)
	}
	return n, nil
}

// parseCount parses the n query parameter of a subscribe endpoint.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad n %q: expected a number of messages >= 0 (0: no limit)", s)
	}
	return n, nil
}
