package api

import (
	"encoding/json"
	"net/http"
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
