package client

// Broadcast topics: publish (one, or a streamed bulk body), subscribe (an
// NDJSON stream of a topic's messages with visible drops) and the list of
// joined topics with their counters. docs/api-gossip.md is the reference of
// these routes.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PublishRequest is the body of POST /v1/topics/publish.
type PublishRequest struct {
	Topic string `json:"topic"`
	Data  []byte `json:"data"` // base64 in JSON
	// TimeoutMS bounds the wait for a first subscribed peer when the topic
	// has none; 0 means the daemon's gossip.publish_timeout.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// PublishResult is the answer of POST /v1/topics/publish and
// POST /v1/topics/publish/bulk.
type PublishResult struct {
	Published int64 `json:"published"` // messages published
}

// BulkPublishError is the error body of POST /v1/topics/publish/bulk: the
// messages before the failing one were published.
type BulkPublishError struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	Published int64  `json:"published"`
}

// BulkPublishParams are the query parameters of POST /v1/topics/publish/bulk.
type BulkPublishParams struct {
	Topic     string
	TimeoutMS int64 // as in PublishRequest, for every message
	// NDJSON selects a body of BulkPublishMessage lines; otherwise every
	// line of the body is one message.
	NDJSON bool
}

// BulkPublishMessage is one line of an NDJSON bulk publish body.
type BulkPublishMessage struct {
	Data []byte `json:"data"`
}

// TopicLeaveRequest is the body of POST /v1/topics/leave.
type TopicLeaveRequest struct {
	Topic string `json:"topic"`
}

// TopicLeaveResult is the answer of POST /v1/topics/leave.
type TopicLeaveResult struct {
	Left bool `json:"left"` // false: the topic was not joined
}

// LeaveTopic calls POST /v1/topics/leave: the node stops relaying a topic
// that has no open subscription and forgets it. A topic with open
// subscriptions is refused (CodeConflict).
func (c *Client) LeaveTopic(ctx context.Context, topic string) (TopicLeaveResult, error) {
	var v TopicLeaveResult
	return v, c.do(ctx, http.MethodPost, "/v1/topics/leave", TopicLeaveRequest{Topic: topic}, &v)
}

// TopicMessage is a broadcast message as the API streams it.
type TopicMessage struct {
	Topic string `json:"topic"`
	From  string `json:"from"` // author: the peer that signed and published it
	// ReceivedFrom is the peer that forwarded it to this node (the author
	// when directly connected; this node for its own publishes).
	ReceivedFrom string    `json:"received_from"`
	ID           string    `json:"id"`   // "<author>/<sequence number>"
	Time         time.Time `json:"time"` // when this node received (or published) it
	Data         []byte    `json:"data"` // base64 in JSON
}

// TopicSubscribeOptions are the query parameters of GET /v1/topics/subscribe.
type TopicSubscribeOptions struct {
	Buffer int // 0: DefaultSubscribeBuffer
	Count  int // end the stream after this many messages; 0: never
}

// TopicSubscriptionInfo is the first record of a topic subscription stream.
type TopicSubscriptionInfo struct {
	Topic  string `json:"topic"`
	Buffer int    `json:"buffer"`
	Count  int    `json:"count,omitempty"`
}

// TopicEvent is one record of a topic subscription stream: exactly one of a
// message (the TopicMessage fields inline), Subscribed (first record) or
// Dropped (the subscription's total drops, sent whenever it changes and
// once more when the stream ends).
type TopicEvent struct {
	*TopicMessage
	Subscribed *TopicSubscriptionInfo `json:"subscribed,omitempty"`
	Dropped    *uint64                `json:"dropped,omitempty"`
}

// TopicInfo is one entry of GET /v1/topics.
type TopicInfo struct {
	Name          string `json:"name"`
	Peers         int    `json:"peers"`         // connected peers subscribed to (or relaying) it
	Mesh          int    `json:"mesh"`          // of those, peers in this node's GossipSub mesh
	Subscriptions int    `json:"subscriptions"` // open local subscriptions
	Published     uint64 `json:"published"`     // messages this node published
	Received      uint64 `json:"received"`      // messages received from peers and accepted
	Dropped       uint64 `json:"dropped"`       // losses, all reasons (see DroppedBy)
	Rejected      uint64 `json:"rejected"`      // refused by validation, all reasons (see RejectedBy)
	// DroppedBy and RejectedBy break the totals down by reason; reasons
	// with a zero count are left out.
	DroppedBy  map[string]uint64 `json:"dropped_by,omitempty"`
	RejectedBy map[string]uint64 `json:"rejected_by,omitempty"`
}

// Topics calls GET /v1/topics: the joined topics with their counters.
func (c *Client) Topics(ctx context.Context) ([]TopicInfo, error) {
	var v []TopicInfo
	return v, c.do(ctx, http.MethodGet, "/v1/topics", nil, &v)
}

// Publish calls POST /v1/topics/publish.
func (c *Client) Publish(ctx context.Context, req PublishRequest) (PublishResult, error) {
	var v PublishResult
	return v, c.do(ctx, http.MethodPost, "/v1/topics/publish", req, &v)
}

// PublishMessages calls POST /v1/topics/publish/bulk, streaming body as the
// request body: lines of messages, or with p.NDJSON lines of
// BulkPublishMessage. The daemon publishes each message as it reads it. On
// failure the *Error says which line failed, and the result holds how many
// messages were published before it.
func (c *Client) PublishMessages(ctx context.Context, p BulkPublishParams, body io.Reader) (PublishResult, error) {
	q := url.Values{"topic": {p.Topic}}
	if p.TimeoutMS != 0 {
		q.Set("timeout_ms", strconv.FormatInt(p.TimeoutMS, 10))
	}
	var e BulkPublishError
	v, err := postBulk[PublishResult](ctx, c, "/v1/topics/publish/bulk", q, p.NDJSON, body, &e)
	if err != nil {
		v.Published = e.Published
	}
	return v, err
}

// TopicStream is an open topic subscription (GET /v1/topics/subscribe). The
// subscription lives in the daemon until Close or the ctx given to
// SubscribeTopic ends.
type TopicStream struct {
	subStream
	Info TopicSubscriptionInfo
}

// SubscribeTopic opens a topic subscription stream and waits until the
// daemon has subscribed: messages that arrive from then on are streamed.
func (c *Client) SubscribeTopic(ctx context.Context, topic string, o TopicSubscribeOptions) (*TopicStream, error) {
	q := url.Values{"topic": {topic}}
	if o.Buffer != 0 {
		q.Set("buffer", strconv.Itoa(o.Buffer))
	}
	if o.Count != 0 {
		q.Set("n", strconv.Itoa(o.Count))
	}
	var ev TopicEvent
	s, err := c.openStreamFirst(ctx, "/v1/topics/subscribe", q, &ev, func() bool { return ev.Subscribed != nil }, "subscribed")
	if err != nil {
		return nil, err
	}
	return &TopicStream{subStream: subStream{s: s, count: ev.Subscribed.Count}, Info: *ev.Subscribed}, nil
}

// Next returns the next record: a message (ev.TopicMessage) or a drop
// report (ev.Dropped). It returns io.EOF when the daemon ended the stream
// after Info.Count messages, an error when it ended it early, and ctx's
// error when the subscriber's ctx ended.
func (t *TopicStream) Next() (TopicEvent, error) {
	var ev TopicEvent
	if err := t.s.next(&ev); err != nil {
		return ev, t.finish(err, "topic "+strconv.Quote(t.Info.Topic))
	}
	t.record(ev.TopicMessage != nil, ev.Dropped)
	return ev, nil
}
