package api

// The one writer of the API's NDJSON streams (one JSON record per line,
// Content-Type application/x-ndjson): the message and topic subscription
// streams and the handle stream.

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// ndjsonWriter writes a streaming response of one JSON record per line.
type ndjsonWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *json.Encoder
	// lastDropped is the subscription's drop count last sent.
	lastDropped uint64
}

// startStream starts a 200 application/x-ndjson response with the record
// first, flushed. Until stop is called, ctx ending unblocks its writes: a
// client that stops reading blocks them (the backpressure of a
// subscription). An error means the client is gone; stop must be called
// either way.
func startStream(ctx context.Context, w http.ResponseWriter, first any) (nd *ndjsonWriter, stop func() bool, err error) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	nd = &ndjsonWriter{w: w, rc: rc, enc: json.NewEncoder(w)}
	stop = context.AfterFunc(ctx, func() { _ = rc.SetWriteDeadline(time.Now()) })
	return nd, stop, nd.Send(first)
}

// Send writes one record and flushes it; an error means the client is gone.
func (n *ndjsonWriter) Send(v any) error {
	if err := n.enc.Encode(v); err != nil {
		return err
	}
	return n.rc.Flush()
}

// Write writes a record already encoded as one line (with its '\n'),
// without flushing: end the batch with EndBatch.
func (n *ndjsonWriter) Write(line []byte) error {
	_, err := n.w.Write(line)
	return err
}

// Encode writes one record without flushing: end the batch with EndBatch.
func (n *ndjsonWriter) Encode(v any) error { return n.enc.Encode(v) }

// dropRecord is the {"dropped": N} record of a subscription stream, encoded
// as client.MessageEvent and client.TopicEvent decode theirs.
type dropRecord struct {
	Dropped uint64 `json:"dropped"`
}

// EndBatch ends a batch of a subscription stream's messages: a dropped
// record when the subscription's drops (dropped) have changed since the
// last one, then a flush. An error means the client is gone.
//
// A drop happens only while the subscription's buffer is full, so a
// message always follows the last drop and its record is never left unsent
// while the stream goes on; when the stream ends, End sends it.
func (n *ndjsonWriter) EndBatch(dropped uint64) error {
	if dropped != n.lastDropped {
		n.lastDropped = dropped
		if err := n.enc.Encode(dropRecord{Dropped: dropped}); err != nil {
			return err
		}
	}
	return n.rc.Flush()
}

// End ends a subscription stream that ends while the client is still there
// (its n messages delivered, or the service closed): a last dropped record
// when the drops changed since the last one, so that the client's count of
// drops agrees with the daemon's. Close the subscription first, so that
// the drops count what it still held.
func (n *ndjsonWriter) End(dropped uint64) { _ = n.EndBatch(dropped) }
