package api

// Broadcast topics (package gossip): publish (one, or a streamed bulk body),
// subscribe (an NDJSON stream of a topic's messages with visible drops) and
// the list of joined topics with their counters. docs/api-gossip.md is the
// reference of these endpoints.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/warren-p2p/warren/gossip"
)

// MaxTopicLen is the longest topic name.
const MaxTopicLen = gossip.MaxTopicLen

// TopicInfo is one entry of GET /v1/topics.
type TopicInfo = gossip.TopicInfo

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
	Buffer int // 0: the default (1024)
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
// Dropped (the subscription's total drops, sent whenever it changes).
type TopicEvent struct {
	*TopicMessage
	Subscribed *TopicSubscriptionInfo `json:"subscribed,omitempty"`
	Dropped    *uint64                `json:"dropped,omitempty"`
}

// ---------------------------------------------------------------- server

// gossipAPI holds the topic endpoints of one Server.
type gossipAPI struct{ s *Server }

func (s *Server) gossipRoutes() {
	a := &gossipAPI{s: s}
	s.handle("GET /v1/topics", kindCall, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, nonNil(s.node.Gossip.Topics()))
	})
	s.handle("POST /v1/topics/publish", kindCall, a.publish)
	s.handle("POST /v1/topics/publish/bulk", kindUpload, a.publishBulk)
	s.handle("GET /v1/topics/subscribe", kindStream, a.subscribe)
}

func (a *gossipAPI) maxSize() int { return a.s.node.Config().Gossip.MaxMessageSize }

// bodyLimit is the largest JSON body that can carry a maximal message.
func (a *gossipAPI) bodyLimit() bodyLimit {
	return bodyLimit{n: int64(base64.StdEncoding.EncodedLen(a.maxSize())) + 64<<10,
		why: fmt.Sprintf("the message is larger than gossip.max_message_size (%d bytes) allows", a.maxSize())}
}

func (a *gossipAPI) checkSize(topic string, n int) error {
	if n > a.maxSize() {
		return fmt.Errorf("publish to topic %q: the message is %d bytes, over the limit of %d bytes (gossip.max_message_size)", topic, n, a.maxSize())
	}
	return nil
}

// timeout returns the wait for a first peer: timeoutMS, or the config's.
func (a *gossipAPI) timeout(timeoutMS int64) (time.Duration, error) {
	return parseTimeoutMS(timeoutMS, a.s.node.Config().Gossip.PublishTimeout.Std(), "gossip.publish_timeout")
}

// publishOne publishes data, waiting up to wait for a first subscribed peer
// when the topic has none.
func (a *gossipAPI) publishOne(ctx context.Context, topic string, data []byte, wait time.Duration) (int, error) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := a.s.node.Gossip.Publish(wctx, topic, data)
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, gossip.ErrNoPeers):
		if ctx.Err() != nil {
			return http.StatusServiceUnavailable, fmt.Errorf("publish to topic %q: cancelled after %s while waiting for a first subscribed peer: %w",
				topic, time.Since(start).Round(time.Millisecond), ctx.Err())
		}
		return http.StatusGatewayTimeout, fmt.Errorf("publish to topic %q: no peer subscribed to it within %s, so the message was not sent "+
			"(members find each other through the DHT: connect this node to the network, or wait longer)", topic, wait)
	case errors.Is(err, gossip.ErrTooLarge):
		return http.StatusBadRequest, err
	case errors.Is(err, gossip.ErrClosed):
		return http.StatusServiceUnavailable, fmt.Errorf("publish to topic %q: the daemon is shutting down: %w", topic, err)
	}
	return statusFor(err), err
}

func (a *gossipAPI) publish(w http.ResponseWriter, r *http.Request) {
	var req PublishRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-gossip.md", &req) {
		return
	}
	err := gossip.ValidateTopic(req.Topic)
	if err == nil {
		err = a.checkSize(req.Topic, len(req.Data))
	}
	var wait time.Duration
	if err == nil {
		wait, err = a.timeout(req.TimeoutMS)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if code, err := a.publishOne(r.Context(), req.Topic, req.Data, wait); err != nil {
		fail(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, PublishResult{Published: 1})
}

func (a *gossipAPI) publishBulk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var published int64
	resp := newBulkResponse(w, r)
	failBulk := func(code int, err error) {
		resp.fail(code, BulkPublishError{Error: oneLine(err.Error()), Published: published})
	}
	if err := checkQuery(q, "topic", "timeout_ms"); err != nil {
		failBulk(http.StatusBadRequest, err)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != ContentTypeLines && ct != ContentTypeNDJSON) {
		failBulk(http.StatusUnsupportedMediaType, fmt.Errorf("bulk publish: Content-Type %q: expected %s (one message per line) or %s (one JSON object per line)",
			r.Header.Get("Content-Type"), ContentTypeLines, ContentTypeNDJSON))
		return
	}
	ndjson := ct == ContentTypeNDJSON
	topic := q.Get("topic")
	err = gossip.ValidateTopic(topic)
	var timeoutMS int64
	if err == nil && q.Has("timeout_ms") {
		if timeoutMS, err = strconv.ParseInt(q.Get("timeout_ms"), 10, 64); err != nil {
			err = fmt.Errorf("bad timeout_ms %q: expected 1 to %d milliseconds (%s), or 0 for gossip.publish_timeout", q.Get("timeout_ms"), MaxTimeout.Milliseconds(), MaxTimeout)
		}
	}
	var wait time.Duration
	if err == nil {
		wait, err = a.timeout(timeoutMS)
	}
	if err != nil {
		failBulk(http.StatusBadRequest, err)
		return
	}
	limit := a.maxSize()
	if ndjson {
		limit = int(a.bodyLimit().n)
	}
	lr := newLineReader(r.Body, limit, "gossip.max_message_size")
	ctx := r.Context()
	for {
		data, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			code, err := a.s.bulkReadError(ctx, err)
			failBulk(code, fmt.Errorf("bulk publish to topic %q: read the request body: %w; %d messages published before it", topic, err, published))
			return
		}
		line := lr.line
		if ndjson {
			if len(bytes.TrimSpace(data)) == 0 {
				continue
			}
			var bm BulkPublishMessage
			if err := decodeJSON(bytes.NewReader(data), &bm); err != nil {
				failBulk(http.StatusBadRequest, fmt.Errorf("bulk publish to topic %q: line %d: expected a JSON object {\"data\": base64}: %v; %d messages published before it",
					topic, line, err, published))
				return
			}
			data = bm.Data
		}
		if len(data) > a.maxSize() {
			failBulk(http.StatusBadRequest, fmt.Errorf("bulk publish to topic %q: line %d: the message is %d bytes, over the limit of %d bytes (gossip.max_message_size); %d messages published before it",
				topic, line, len(data), a.maxSize(), published))
			return
		}
		if code, err := a.publishOne(ctx, topic, data, wait); err != nil {
			failBulk(code, fmt.Errorf("bulk publish: line %d: %w; %d messages published before it", line, err, published))
			return
		}
		published++
	}
	writeJSON(w, http.StatusOK, PublishResult{Published: published})
}

func topicMessage(m *gossip.Message) *TopicMessage {
	return &TopicMessage{Topic: m.Topic, From: m.From.String(), ReceivedFrom: m.ReceivedFrom.String(),
		ID: m.ID, Time: m.Time, Data: nonNil(m.Data)}
}

func (a *gossipAPI) subscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "topic", "buffer", "n"); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	info := TopicSubscriptionInfo{Topic: q.Get("topic")}
	err := gossip.ValidateTopic(info.Topic)
	if err == nil && q.Has("buffer") {
		info.Buffer, err = parseBuffer(q.Get("buffer"), gossip.DefaultSubscriptionBuffer)
	}
	if err == nil && q.Has("n") {
		info.Count, err = parseCount(q.Get("n"))
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if info.Buffer == 0 {
		info.Buffer = gossip.DefaultSubscriptionBuffer
	}
	sub, err := a.s.node.Gossip.Subscribe(info.Topic, gossip.SubscribeOptions{Buffer: info.Buffer})
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, gossip.ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		fail(w, code, err)
		return
	}
	defer sub.Close()

	ctx := r.Context()
	// A client that stops reading blocks our writes: the subscription then
	// drops and counts.
	nd, stop, err := startStream(ctx, w, TopicEvent{Subscribed: &info})
	defer stop()
	if err != nil {
		return
	}
	var lastDropped uint64
	for delivered := 0; info.Count == 0 || delivered < info.Count; delivered++ {
		m, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, gossip.ErrClosed) {
				a.s.log.Info("topic subscription ended: the gossip service closed", "topic", info.Topic)
			}
			return
		}
		if err := nd.enc.Encode(TopicEvent{TopicMessage: topicMessage(m)}); err != nil {
			return
		}
		if nd.endBatch(sub.Dropped(), &lastDropped) != nil {
			return
		}
	}
}

// ---------------------------------------------------------------- client

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
// failure the error says which line failed and how many messages were
// published before it.
func (c *Client) PublishMessages(ctx context.Context, p BulkPublishParams, body io.Reader) (PublishResult, error) {
	q := url.Values{"topic": {p.Topic}}
	if p.TimeoutMS != 0 {
		q.Set("timeout_ms", strconv.FormatInt(p.TimeoutMS, 10))
	}
	return postBulk[PublishResult](ctx, c, "/v1/topics/publish/bulk", q, p.NDJSON, body)
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
