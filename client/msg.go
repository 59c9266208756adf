package client

// Direct messages: send (one, or a streamed bulk body), subscribe (an NDJSON
// stream of received messages with visible drops), request, answer requests
// (an NDJSON stream of incoming requests plus a reply call) and stats.
// docs/api-msg.md is the reference of these routes.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DefaultSubscribeBuffer is the buffer of a message or topic subscription
// that asks for none.
const DefaultSubscribeBuffer = 1024

// MaxSubscribeBuffer bounds the buffer a subscriber may ask for.
const MaxSubscribeBuffer = 1 << 20

// MaxTimeout bounds the timeout_ms of a request or a publish.
const MaxTimeout = time.Hour

// Content types of the bulk bodies.
const (
	ContentTypeLines  = "text/plain"           // one message per line
	ContentTypeNDJSON = "application/x-ndjson" // one JSON object per line
)

// SendRequest is the body of POST /v1/messages/send.
type SendRequest struct {
	Peer     string `json:"peer"`               // peer ID
	Type     string `json:"type"`               // message type
	Payload  []byte `json:"payload"`            // base64 in JSON
	Priority string `json:"priority,omitempty"` // high, normal (default) or low
	// ID, if set (32 hex digits), is the message id, so that a retried send
	// is recognised by de-duplicating subscribers.
	ID string `json:"id,omitempty"`
}

// SendResult is the answer of POST /v1/messages/send and
// POST /v1/messages/send/bulk.
type SendResult struct {
	Sent int64 `json:"sent"` // messages queued for the peer
}

// BulkSendError is the error body of POST /v1/messages/send/bulk: the
// messages before the failing one were queued.
type BulkSendError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Sent  int64  `json:"sent"`
}

// BulkParams are the query parameters of POST /v1/messages/send/bulk.
type BulkParams struct {
	Peer     string
	Type     string // default type of every message (required for lines)
	Priority string // default priority
	// NDJSON selects a body of BulkMessage lines; otherwise every line of the
	// body is one payload.
	NDJSON bool
}

// BulkMessage is one line of an NDJSON bulk send body. Type and Priority
// override the query's.
type BulkMessage struct {
	Payload  []byte `json:"payload"`
	Type     string `json:"type,omitempty"`
	Priority string `json:"priority,omitempty"`
	ID       string `json:"id,omitempty"`
}

// ReceivedMessage is a message as the API streams it (and a request's reply).
type ReceivedMessage struct {
	Type    string    `json:"type"`
	From    string    `json:"from"`
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`          // when this node received it
	Sent    time.Time `json:"sent,omitzero"` // when the sender wrote it (sender's clock)
	Payload []byte    `json:"payload"`       // base64 in JSON
}

// SubscribeOptions are the query parameters of GET /v1/messages/subscribe.
type SubscribeOptions struct {
	Policy string // block (default), drop-oldest or drop-newest
	Buffer int    // 0: DefaultSubscribeBuffer
	Dedup  bool
	Count  int // end the stream after this many messages; 0: never
}

// SubscriptionInfo is the first record of a subscription stream.
type SubscriptionInfo struct {
	Type   string `json:"type"`
	Policy string `json:"policy"`
	Buffer int    `json:"buffer"`
	Dedup  bool   `json:"dedup"`
	Count  int    `json:"count,omitempty"`
}

// MessageEvent is one record of a subscription stream: exactly one of a
// message (the ReceivedMessage fields inline), Subscribed (first record) or
// Dropped (the subscription's total drops, sent whenever it changes and
// once more when the stream ends).
type MessageEvent struct {
	*ReceivedMessage
	Subscribed *SubscriptionInfo `json:"subscribed,omitempty"`
	Dropped    *uint64           `json:"dropped,omitempty"`
}

// RequestRequest is the body of POST /v1/messages/request.
type RequestRequest struct {
	Peer    string `json:"peer"`
	Type    string `json:"type"`
	Payload []byte `json:"payload"`
	// TimeoutMS bounds the wait for the reply; 0 means the daemon's
	// messages.request_timeout.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// HandlingInfo is the first record of a handle stream.
type HandlingInfo struct {
	Type string `json:"type"`
}

// IncomingRequest is a request streamed to a responder. Answer it with
// POST /v1/messages/reply naming its RID.
type IncomingRequest struct {
	RID      string    `json:"rid"`
	Type     string    `json:"type"`
	From     string    `json:"from"`
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Deadline time.Time `json:"deadline"` // the requester gives up then
	Payload  []byte    `json:"payload"`
}

// RequestEvent is one record of a handle stream: Handling first, then
// requests (the IncomingRequest fields inline).
type RequestEvent struct {
	*IncomingRequest
	Handling *HandlingInfo `json:"handling,omitempty"`
}

// ReplyRequest is the body of POST /v1/messages/reply: Payload, or Error to
// make the requester's call fail with that text.
type ReplyRequest struct {
	RID     string `json:"rid"`
	Payload []byte `json:"payload,omitempty"`
	Error   string `json:"error,omitempty"`
}

// MessageStats is the body of GET /v1/messages/stats.
type MessageStats struct {
	// Types has one entry per known type plus "other" for everything else.
	Types         map[string]MessageTypeStats `json:"types"`
	Subscriptions []MessageSubscriptionStats  `json:"subscriptions"`
	Peers         []MessagePeerStats          `json:"peers"`
	// BadFrames counts frames rejected as oversized or malformed.
	BadFrames uint64 `json:"bad_frames"`
	// LateReplies counts replies that arrived after their request gave up.
	LateReplies uint64 `json:"late_replies"`
	// FailedReplies counts replies this node could not send.
	FailedReplies uint64 `json:"failed_replies"`
	// RefusedStreams counts inbound streams the resource manager refused.
	RefusedStreams uint64 `json:"refused_streams"`
	// RefusedMemory counts inbound streams reset because the resource
	// manager refused memory for a frame being read.
	RefusedMemory uint64 `json:"refused_memory"`
	// InboundFrameBytes is the memory reserved right now for frames being read.
	InboundFrameBytes int64 `json:"inbound_frame_bytes"`
	// SlowFrames counts inbound streams reset because a large frame did not
	// arrive at the minimum rate.
	SlowFrames uint64 `json:"slow_frames"`
	// HandlerPayloadBytes is the payload memory held right now by running
	// request handlers.
	HandlerPayloadBytes int64 `json:"handler_payload_bytes"`
	PendingRequests     int   `json:"pending_requests"`
}

// MessageTypeStats counts one message type. Requests and replies are
// included in the in/out counts.
type MessageTypeStats struct {
	MsgsIn   uint64 `json:"msgs_in"`
	BytesIn  uint64 `json:"bytes_in"`   // payload bytes
	MsgsOut  uint64 `json:"msgs_out"`   // written to a stream
	BytesOut uint64 `json:"bytes_out"`  // payload bytes
	Dropped  uint64 `json:"dropped"`    // by subscription overflow policy or close, over all subscriptions
	Dups     uint64 `json:"duplicates"` // discarded by dedup subscriptions
	// Unhandled counts messages with no subscriber (or requests with no
	// handler) on arrival.
	Unhandled uint64 `json:"unhandled"`
	// SendFailed counts messages queued but lost when their stream failed
	// or the service closed.
	SendFailed  uint64 `json:"send_failed"`
	Subscribers int    `json:"subscribers"`
	Handler     bool   `json:"handler"`
	Queued      int    `json:"queued"` // in this type's subscriptions
}

// MessageSubscriptionStats describes one open subscription.
type MessageSubscriptionStats struct {
	ID          uint64 `json:"id"`
	Type        string `json:"type"`
	Policy      string `json:"policy"` // block, drop-oldest or drop-newest
	Buffer      int    `json:"buffer"`
	MaxBytes    int    `json:"max_bytes"`
	Dedup       bool   `json:"dedup"`
	Queued      int    `json:"queued"`
	QueuedBytes int    `json:"queued_bytes"` // payload bytes
	Delivered   uint64 `json:"delivered"`
	Dropped     uint64 `json:"dropped"`
	Duplicates  uint64 `json:"duplicates"`
}

// QueueDepths are send-queue lengths by priority.
type QueueDepths struct {
	High   int `json:"high"`
	Normal int `json:"normal"`
	Low    int `json:"low"`
}

// MessagePeerStats describes the outbound side of one peer: an open
// stream, or a failed one whose losses the next send will report.
type MessagePeerStats struct {
	Peer   string      `json:"peer"`
	Open   bool        `json:"open"`
	Queued QueueDepths `json:"queued"`
	Sent   uint64      `json:"sent"`   // on the current stream
	Failed uint64      `json:"failed"` // on the current stream
	// Lost and LastError describe a failed stream not yet reported by a send.
	Lost      uint64    `json:"lost,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	FailedAt  time.Time `json:"failed_at,omitzero"`
}

// SendMessage calls POST /v1/messages/send.
func (c *Client) SendMessage(ctx context.Context, req SendRequest) (SendResult, error) {
	var v SendResult
	return v, c.do(ctx, http.MethodPost, "/v1/messages/send", req, &v)
}

// SendMessages calls POST /v1/messages/send/bulk, streaming body as the
// request body: lines of payloads, or with p.NDJSON lines of BulkMessage.
// The daemon sends each message as it reads it. On failure the *Error says
// which line failed, and the result holds how many messages were sent
// before it.
func (c *Client) SendMessages(ctx context.Context, p BulkParams, body io.Reader) (SendResult, error) {
	q := url.Values{"peer": {p.Peer}}
	if p.Type != "" {
		q.Set("type", p.Type)
	}
	if p.Priority != "" {
		q.Set("priority", p.Priority)
	}
	var e BulkSendError
	v, err := postBulk[SendResult](ctx, c, "/v1/messages/send/bulk", q, p.NDJSON, body, &e)
	if err != nil {
		v.Sent = e.Sent
	}
	return v, err
}

// RequestMessage calls POST /v1/messages/request and returns the reply.
func (c *Client) RequestMessage(ctx context.Context, req RequestRequest) (ReceivedMessage, error) {
	var v ReceivedMessage
	return v, c.do(ctx, http.MethodPost, "/v1/messages/request", req, &v)
}

// ReplyRequest calls POST /v1/messages/reply.
func (c *Client) ReplyRequest(ctx context.Context, req ReplyRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/messages/reply", req, nil)
}

// MessageStats calls GET /v1/messages/stats.
func (c *Client) MessageStats(ctx context.Context) (MessageStats, error) {
	var v MessageStats
	return v, c.do(ctx, http.MethodGet, "/v1/messages/stats", nil, &v)
}

// MessageStream is an open subscription (GET /v1/messages/subscribe). The
// subscription lives in the daemon until Close or the ctx given to
// SubscribeMessages ends.
type MessageStream struct {
	subStream
	Info SubscriptionInfo
}

// SubscribeMessages opens a subscription stream and waits until the daemon
// has subscribed: messages that arrive from then on are streamed.
func (c *Client) SubscribeMessages(ctx context.Context, typ string, o SubscribeOptions) (*MessageStream, error) {
	q := url.Values{"type": {typ}}
	if o.Policy != "" {
		q.Set("policy", o.Policy)
	}
	if o.Buffer != 0 {
		q.Set("buffer", strconv.Itoa(o.Buffer))
	}
	if o.Dedup {
		q.Set("dedup", "true")
	}
	if o.Count != 0 {
		q.Set("n", strconv.Itoa(o.Count))
	}
	var ev MessageEvent
	s, err := c.openStreamFirst(ctx, "/v1/messages/subscribe", q, &ev, func() bool { return ev.Subscribed != nil }, "subscribed")
	if err != nil {
		return nil, err
	}
	return &MessageStream{subStream: subStream{s: s, count: ev.Subscribed.Count}, Info: *ev.Subscribed}, nil
}

// Next returns the next record: a message (ev.ReceivedMessage) or a drop
// report (ev.Dropped). It returns io.EOF when the daemon ended the stream
// after Info.Count messages, an error when it ended it early, and ctx's
// error when the subscriber's ctx ended.
func (m *MessageStream) Next() (MessageEvent, error) {
	var ev MessageEvent
	line, err := m.s.line()
	if err == nil {
		var fast bool
		if ev.ReceivedMessage, fast = parseMessageLine(line); !fast {
			ev.ReceivedMessage = nil
			err = m.s.decode(line, &ev)
		}
	}
	if err != nil {
		return ev, m.finish(err, strconv.Quote(m.Info.Type))
	}
	m.record(ev.ReceivedMessage != nil, ev.Dropped)
	return ev, nil
}

// parseMessageLine decodes a message record in the exact form the daemon
// writes (no escapes, known fields), without reflection; ok is false for
// anything else, which is then decoded by encoding/json.
func parseMessageLine(line []byte) (m *ReceivedMessage, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	rest, found := bytes.CutPrefix(line, []byte(`{"`))
	if !found || !bytes.HasSuffix(rest, []byte(`"}`)) || bytes.IndexByte(rest, '\\') >= 0 {
		return nil, false
	}
	rest = rest[:len(rest)-2]
	m = &ReceivedMessage{}
	for len(rest) > 0 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte(`","`))
		key, val, found := bytes.Cut(field, []byte(`":"`))
		if !found {
			return nil, false
		}
		if string(key) == "payload" {
			// base64 decoding refuses every other byte JSON would, but
			// skips CR and LF, which JSON refuses raw inside a string.
			if bytes.ContainsAny(val, "\r\n") {
				return nil, false
			}
		} else if !plainJSONText(val) {
			return nil, false
		}
		var err error
		switch string(key) {
		case "type":
			m.Type = string(val)
		case "from":
			m.From = string(val)
		case "id":
			m.ID = string(val)
		case "time":
			err = m.Time.UnmarshalText(val) // as strict as encoding/json
		case "sent":
			err = m.Sent.UnmarshalText(val)
		case "payload":
			m.Payload, err = base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(val))), val)
		default:
			return nil, false
		}
		if err != nil {
			return nil, false
		}
	}
	return m, m.Type != "" && m.Payload != nil
}

// plainJSONText reports whether b is printable ASCII without '"', so that it
// means the same inside a JSON string as outside.
func plainJSONText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' {
			return false
		}
	}
	return true
}

// RequestStream is an open responder registration (GET /v1/messages/handle):
// this client answers the requests of one type until Close or its ctx ends.
type RequestStream struct {
	s    *ndjsonReader
	Type string
}

// HandleRequests registers this client as the responder of typ. The daemon
// refuses a second responder for a type with an *Error of code
// CodeConflict.
func (c *Client) HandleRequests(ctx context.Context, typ string) (*RequestStream, error) {
	var ev RequestEvent
	s, err := c.openStreamFirst(ctx, "/v1/messages/handle", url.Values{"type": {typ}}, &ev, func() bool { return ev.Handling != nil }, "handling")
	if err != nil {
		return nil, err
	}
	return &RequestStream{s: s, Type: ev.Handling.Type}, nil
}

// Next waits for the next request; answer it with Client.ReplyRequest.
func (h *RequestStream) Next() (*IncomingRequest, error) {
	for {
		var ev RequestEvent
		err := h.s.next(&ev)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the daemon ended the responder stream for %q (is it shutting down?)", h.Type)
		}
		if err != nil {
			if ctxErr := h.s.resp.Request.Context().Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, err
		}
		if ev.IncomingRequest != nil {
			return ev.IncomingRequest, nil
		}
	}
}

// Close ends the registration.
func (h *RequestStream) Close() error { return h.s.resp.Body.Close() }
