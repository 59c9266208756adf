package api

// Handlers of broadcast topics (package gossip): publish (one, or a
// streamed bulk body), subscribe (an NDJSON stream of a topic's messages
// with visible drops) and the list of joined topics with their counters.
// docs/api-gossip.md is the reference of these endpoints.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/gossip"
)

// gossipAPI holds the topic endpoints of one Server.
type gossipAPI struct{ s *Server }

func (a *gossipAPI) routes() []route {
	// Publishing: no subscribed peer within the wait, the wait or the
	// service ending, or pubsub failing.
	pub := []string{client.CodeNoPeers, client.CodeTimeout, client.CodeUnavailable, client.CodeUnreachable}
	bulk := []string{client.CodeInvalidArgument, client.CodeUnsupportedMediaType, client.CodeBodyTooLarge, client.CodeBodyTimeout}
	return []route{
		{pattern: "GET /v1/topics", h: a.topics},
		{pattern: "POST /v1/topics/publish", h: a.publish, codes: with(bodyCodes, pub...)},
		{pattern: "POST /v1/topics/publish/bulk", kind: kindUpload, h: a.publishBulk, codes: with(bulk, pub...)},
		{pattern: "POST /v1/topics/leave", h: a.leave, codes: with(bodyCodes, client.CodeConflict)},
		{pattern: "GET /v1/topics/subscribe", kind: kindStream, h: a.subscribe,
			codes: []string{client.CodeInvalidArgument, client.CodeUnavailable, client.CodeUnreachable}},
	}
}

func (a *gossipAPI) topics(w http.ResponseWriter, r *http.Request) {
	ts := a.s.node.Gossip().Topics()
	out := make([]client.TopicInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, topicInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// leave leaves a joined topic that has no open subscription: the node stops
// relaying it and forgets its counters.
func (a *gossipAPI) leave(w http.ResponseWriter, r *http.Request) {
	var req client.TopicLeaveRequest
	if !a.s.readBody(w, r, controlLimit, "docs/api-gossip.md", &req) {
		return
	}
	if err := checkTopic(req.Topic); err != nil {
		writeError(w, err)
		return
	}
	joined := a.joined(req.Topic)
	if info, ok := a.topicInfo(req.Topic); ok && info.Subscriptions > 0 {
		writeError(w, withCode(client.CodeConflict, fmt.Errorf("leave topic %q: %d %s still open (end the 'warren sub' commands reading it first)",
			req.Topic, info.Subscriptions, pluralize(info.Subscriptions, "subscription"))))
		return
	}
	if err := a.s.node.Gossip().Leave(req.Topic); err != nil {
		writeError(w, withCode(client.CodeConflict, err))
		return
	}
	writeJSON(w, http.StatusOK, client.TopicLeaveResult{Left: joined})
}

// joined reports whether the node has joined the topic.
func (a *gossipAPI) joined(topic string) bool { _, ok := a.topicInfo(topic); return ok }

// topicInfo returns the joined topic's entry of the topic list.
func (a *gossipAPI) topicInfo(topic string) (gossip.TopicInfo, bool) {
	for _, t := range a.s.node.Gossip().Topics() {
		if t.Name == topic {
			return t, true
		}
	}
	return gossip.TopicInfo{}, false
}

// leaveIfIdle leaves a topic that a failed publish joined and that nothing
// uses: no open subscription and no message ever published to it. A typo in
// 'warren pub newz' so stays joined no longer than the failed publish. A
// topic whose subscriptions ended stays, with its counters, until 'warren
// topics leave'.
func (a *gossipAPI) leaveIfIdle(topic string) {
	if info, ok := a.topicInfo(topic); ok && info.Subscriptions == 0 && info.Published == 0 {
		if err := a.s.node.Gossip().Leave(topic); err != nil {
			a.s.log.Debug("could not leave an idle topic after a failed publish", "topic", topic, "err", err)
		}
	}
}

func pluralize(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// topicInfo is the wire form of a gossip.TopicInfo.
func topicInfo(t gossip.TopicInfo) client.TopicInfo {
	return client.TopicInfo{Name: t.Name, Peers: t.Peers, Mesh: t.Mesh, Subscriptions: t.Subscriptions,
		Published: t.Published, Received: t.Received, Dropped: t.Dropped, Rejected: t.Rejected,
		DroppedBy: t.DroppedBy, RejectedBy: t.RejectedBy}
}

// topicMessage is the wire form of a gossip.Message.
func topicMessage(m *gossip.Message) *client.TopicMessage {
	return &client.TopicMessage{Topic: m.Topic, From: m.From.String(), ReceivedFrom: m.ReceivedFrom.String(),
		ID: m.ID, Time: m.Time, Data: nonNil(m.Data)}
}

func (a *gossipAPI) maxSize() int { return a.s.node.Config().Gossip.MaxMessageSize }

// bodyLimit is the largest JSON body that can carry a maximal message.
func (a *gossipAPI) bodyLimit() bodyLimit {
	return bodyLimit{n: int64(base64.StdEncoding.EncodedLen(a.maxSize())) + 64<<10,
		why: fmt.Sprintf("the message is larger than gossip.max_message_size (%d bytes) allows", a.maxSize())}
}

func (a *gossipAPI) checkSize(topic string, n int) error {
	if n > a.maxSize() {
		return invalidf("publish to topic %q: the message is %d bytes, over the limit of %d bytes (gossip.max_message_size)", topic, n, a.maxSize())
	}
	return nil
}

func checkTopic(topic string) error {
	if err := gossip.ValidateTopic(topic); err != nil {
		return invalid(err)
	}
	return nil
}

// timeout returns the wait for a first peer: timeoutMS, or the config's.
func (a *gossipAPI) timeout(timeoutMS int64) (time.Duration, error) {
	return parseTimeoutMS(timeoutMS, a.s.node.Config().Gossip.PublishTimeout.Std(), "gossip.publish_timeout")
}

// publishOne publishes data, waiting up to wait for a first subscribed peer
// when the topic has none.
func (a *gossipAPI) publishOne(ctx context.Context, topic string, data []byte, wait time.Duration) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := a.s.node.Gossip().Publish(wctx, topic, data)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gossip.ErrNoPeers):
		a.leaveIfIdle(topic)
		if ctx.Err() != nil {
			return withCode(client.CodeUnavailable, fmt.Errorf("publish to topic %q: cancelled after %s while waiting for a first subscribed peer: %w",
				topic, time.Since(start).Round(time.Millisecond), ctx.Err()))
		}
		return withCode(client.CodeNoPeers, fmt.Errorf("publish to topic %q: no peer subscribed to it within %s, so the message was not sent "+
			"(members find each other through the DHT: connect this node to the network, or wait longer)", topic, wait))
	case errors.Is(err, gossip.ErrClosed):
		return fmt.Errorf("publish to topic %q: the daemon is shutting down: %w", topic, err)
	}
	return orElse(client.CodeUnreachable, err)
}

func (a *gossipAPI) publish(w http.ResponseWriter, r *http.Request) {
	var req client.PublishRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-gossip.md", &req) {
		return
	}
	err := checkTopic(req.Topic)
	if err == nil {
		err = a.checkSize(req.Topic, len(req.Data))
	}
	var wait time.Duration
	if err == nil {
		wait, err = a.timeout(req.TimeoutMS)
	}
	if err == nil {
		err = a.publishOne(r.Context(), req.Topic, req.Data, wait)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.PublishResult{Published: 1})
}

func (a *gossipAPI) publishBulk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var published int64
	resp := newBulkResponse(w, r)
	failBulk := func(err error) {
		status, code := classify(err)
		resp.fail(status, client.BulkPublishError{Error: oneLine(err.Error()), Code: code, Published: published})
	}
	if err := checkQuery(q, "topic", "timeout_ms"); err != nil {
		failBulk(err)
		return
	}
	ndjson, err := bulkContentType(r, "bulk publish", "one message per line")
	if err != nil {
		failBulk(err)
		return
	}
	topic := q.Get("topic")
	err = checkTopic(topic)
	var timeoutMS int64
	if err == nil && q.Has("timeout_ms") {
		if timeoutMS, err = strconv.ParseInt(q.Get("timeout_ms"), 10, 64); err != nil {
			err = invalidf("bad timeout_ms %q: expected 1 to %d milliseconds (%s), or 0 for gossip.publish_timeout", q.Get("timeout_ms"), client.MaxTimeout.Milliseconds(), client.MaxTimeout)
		}
	}
	var wait time.Duration
	if err == nil {
		wait, err = a.timeout(timeoutMS)
	}
	if err != nil {
		failBulk(err)
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
			failBulk(fmt.Errorf("bulk publish to topic %q: read the request body: %w; %d messages published before it", topic, a.s.bulkReadError(ctx, err), published))
			return
		}
		line := lr.line
		if ndjson {
			if len(bytes.TrimSpace(data)) == 0 {
				continue
			}
			var bm client.BulkPublishMessage
			if err := decodeJSON(bytes.NewReader(data), &bm); err != nil {
				failBulk(invalidf("bulk publish to topic %q: line %d: expected a JSON object {\"data\": base64}: %v; %d messages published before it",
					topic, line, err, published))
				return
			}
			data = bm.Data
		}
		if len(data) > a.maxSize() {
			failBulk(invalidf("bulk publish to topic %q: line %d: the message is %d bytes, over the limit of %d bytes (gossip.max_message_size); %d messages published before it",
				topic, line, len(data), a.maxSize(), published))
			return
		}
		if err := a.publishOne(ctx, topic, data, wait); err != nil {
			failBulk(fmt.Errorf("bulk publish: line %d: %w; %d messages published before it", line, err, published))
			return
		}
		published++
	}
	writeJSON(w, http.StatusOK, client.PublishResult{Published: published})
}

func (a *gossipAPI) subscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "topic", "buffer", "n"); err != nil {
		writeError(w, err)
		return
	}
	info := client.TopicSubscriptionInfo{Topic: q.Get("topic")}
	err := checkTopic(info.Topic)
	if err == nil && q.Has("buffer") {
		info.Buffer, err = parseBuffer(q.Get("buffer"), gossip.DefaultSubscriptionBuffer)
	}
	if err == nil && q.Has("n") {
		info.Count, err = parseCount(q.Get("n"))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if info.Buffer == 0 {
		info.Buffer = gossip.DefaultSubscriptionBuffer
	}
	sub, err := a.s.node.Gossip().Subscribe(info.Topic, gossip.SubscribeOptions{Buffer: info.Buffer})
	if err != nil {
		writeError(w, orElse(client.CodeUnreachable, err))
		return
	}
	defer sub.Close()

	ctx := r.Context()
	// A client that stops reading blocks our writes: the subscription then
	// drops and counts.
	nd, stop, err := startStream(ctx, w, client.TopicEvent{Subscribed: &info})
	defer stop()
	if err != nil {
		return
	}
	for delivered := 0; info.Count == 0 || delivered < info.Count; delivered++ {
		m, err := sub.Next(ctx)
		if err != nil {
			if !errors.Is(err, gossip.ErrClosed) {
				return // the client is gone
			}
			a.s.log.Info("topic subscription ended: the gossip service closed", "topic", info.Topic)
			break
		}
		if nd.Encode(client.TopicEvent{TopicMessage: topicMessage(m)}) != nil {
			return
		}
		if nd.EndBatch(sub.Dropped()) != nil {
			return
		}
	}
	// The stream ends while the client is still there: the last record
	// reports the drops since the last message.
	_ = sub.Close()
	nd.End(sub.Dropped())
}
