package api

// Direct messages: send (one, or a streamed bulk body), subscribe (an NDJSON
// stream of received messages with visible drops), request, answer requests
// (an NDJSON stream of incoming requests plus a reply endpoint) and stats.
// docs/api-msg.md is the reference of these endpoints.

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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
)

// MaxSubscribeBuffer bounds the buffer a subscriber may ask for.
const MaxSubscribeBuffer = 1 << 20

// MaxTimeout bounds the timeout_ms of a request or a publish. The message
// service caps the time a requester gives a remote handler at the same hour.
const MaxTimeout = time.Hour

// subscribeBatch is the most messages a subscription stream takes from the
// dispatcher per write (one flush per batch).
const subscribeBatch = 256

// Content types of the bulk send body.
const (
	ContentTypeLines  = "text/plain"           // one message payload per line
	ContentTypeNDJSON = "application/x-ndjson" // one BulkMessage per line
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
	Sent  int64  `json:"sent"`
}

// BulkParams are the query parameters of POST /v1/messages/send/bulk.
type BulkParams struct {
	Peer     string
	Type     string // default type of every message (required for Lines)
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
	Buffer int    // 0: the default (1024)
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
// Dropped (the subscription's total drops, sent whenever it changes).
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
type MessageStats = msg.Stats

// ---------------------------------------------------------------- server

// msgAPI holds the state of the message endpoints of one Server.
type msgAPI struct {
	s       *Server
	nextRID atomic.Uint64
	mu      sync.Mutex
	pending map[string]chan ReplyRequest // by RID; buffered(1)
}

func (s *Server) msgRoutes() {
	a := &msgAPI{s: s, pending: map[string]chan ReplyRequest{}}
	s.handle("POST /v1/messages/send", kindCall, a.send)
	s.handle("POST /v1/messages/send/bulk", kindUpload, a.sendBulk)
	s.handle("GET /v1/messages/subscribe", kindStream, a.subscribe)
	s.handle("POST /v1/messages/request", kindCall, a.request)
	s.handle("GET /v1/messages/handle", kindStream, a.handle)
	s.handle("POST /v1/messages/reply", kindCall, a.reply)
	s.handle("GET /v1/messages/stats", kindCall, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.node.Msg.Stats())
	})
}

func (a *msgAPI) maxSize() int { return a.s.node.Config().Messages.MaxMessageSize }

// bodyLimit is the largest JSON body that can carry a maximal payload.
func (a *msgAPI) bodyLimit() bodyLimit {
	return bodyLimit{n: int64(base64.StdEncoding.EncodedLen(a.maxSize())) + 64<<10,
		why: fmt.Sprintf("the payload is larger than messages.max_message_size (%d bytes) allows", a.maxSize())}
}

// fail answers an error on one line (libp2p dial errors span several).
func fail(w http.ResponseWriter, code int, err error) {
	writeError(w, code, errors.New(oneLine(err.Error())))
}

// oneLine folds a multi-line error text onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return strings.Join(f, "; ")
}

// checkQuery refuses query parameters the endpoint does not know, so a
// misspelt one is not silently ignored.
func checkQuery(q url.Values, known ...string) error {
	for k := range q {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			return fmt.Errorf("unknown query parameter %q: expected %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

func checkType(typ string) error {
	if err := msg.ValidateType(typ); err != nil {
		return fmt.Errorf("bad message type %q: expected 1 to %d characters of A-Za-z0-9._/- (%s)",
			typ, msg.MaxTypeLen, strings.TrimPrefix(strings.TrimPrefix(err.Error(), "msg: "), fmt.Sprintf("invalid message type %q: ", typ)))
	}
	return nil
}

// parseTimeoutMS checks a timeout_ms field: 1 to MaxTimeout in
// milliseconds, or 0 for def (the config setting named setting).
func parseTimeoutMS(ms int64, def time.Duration, setting string) (time.Duration, error) {
	switch {
	case ms < 0 || ms > MaxTimeout.Milliseconds():
		return 0, fmt.Errorf("bad timeout_ms %d: expected 1 to %d milliseconds (%s), or 0 for %s", ms, MaxTimeout.Milliseconds(), MaxTimeout, setting)
	case ms == 0:
		return def, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func parsePriority(s string) (msg.Priority, error) {
	p, err := msg.ParsePriority(s)
	if err != nil {
		return 0, fmt.Errorf("bad priority %q: expected high, normal or low", s)
	}
	return p, nil
}

func parsePolicy(s string) (msg.Policy, error) {
	p, err := msg.ParsePolicy(s)
	if err != nil {
		return 0, fmt.Errorf("bad policy %q: expected block, drop-oldest or drop-newest", s)
	}
	return p, nil
}

func parseMsgID(s string) (msg.ID, error) {
	if s == "" {
		return msg.ID{}, nil
	}
	id, err := msg.ParseID(s)
	if err != nil {
		return id, fmt.Errorf("bad message id %q: expected 32 hex digits", s)
	}
	return id, nil
}

// target parses a peer ID and makes sure this node is connected to it
// (looking it up in the DHT when its address is unknown). The status says
// whose fault a failure is.
func (a *msgAPI) target(ctx context.Context, s string) (peer.ID, int, error) {
	p, err := node.ParsePeerID(s)
	if err != nil {
		return "", http.StatusBadRequest, err
	}
	if p == a.s.node.ID() {
		return "", http.StatusBadRequest, fmt.Errorf("peer %s is this node's own peer ID: messages go to other peers", p)
	}
	if _, err := a.s.node.Connect(ctx, p.String()); err != nil {
		return "", statusFor(err), fmt.Errorf("reach peer: %w", err)
	}
	return p, 0, nil
}

func (a *msgAPI) checkSize(n int, what string) error {
	if n > a.maxSize() {
		return fmt.Errorf("%s is %d bytes, over the limit of %d bytes (messages.max_message_size)", what, n, a.maxSize())
	}
	return nil
}

func (a *msgAPI) send(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-msg.md", &req) {
		return
	}
	prio, err := parsePriority(req.Priority)
	if err == nil {
		err = checkType(req.Type)
	}
	var id msg.ID
	if err == nil {
		id, err = parseMsgID(req.ID)
	}
	if err == nil {
		err = a.checkSize(len(req.Payload), "the payload")
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	p, code, err := a.target(r.Context(), req.Peer)
	if err != nil {
		fail(w, code, fmt.Errorf("send %q: %w", req.Type, err))
		return
	}
	if err := a.s.node.Msg.Send(r.Context(), p, req.Type, req.Payload, msg.SendOptions{Priority: prio, ID: id}); err != nil {
		fail(w, statusFor(err), err)
		return
	}
	writeJSON(w, http.StatusOK, SendResult{Sent: 1})
}

func (a *msgAPI) sendBulk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var sent int64
	resp := newBulkResponse(w, r)
	failBulk := func(code int, err error) {
		resp.fail(code, BulkSendError{Error: oneLine(err.Error()), Sent: sent})
	}
	if err := checkQuery(q, "peer", "type", "priority"); err != nil {
		failBulk(http.StatusBadRequest, err)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != ContentTypeLines && ct != ContentTypeNDJSON) {
		failBulk(http.StatusUnsupportedMediaType, fmt.Errorf("bulk send: Content-Type %q: expected %s (one payload per line) or %s (one JSON object per line)",
			r.Header.Get("Content-Type"), ContentTypeLines, ContentTypeNDJSON))
		return
	}
	ndjson := ct == ContentTypeNDJSON
	typ, prioText := q.Get("type"), q.Get("priority")
	prio, err := parsePriority(prioText)
	if err == nil && (typ != "" || !ndjson) {
		err = checkType(typ)
	}
	if err != nil {
		failBulk(http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	p, code, err := a.target(ctx, q.Get("peer"))
	if err != nil {
		failBulk(code, fmt.Errorf("bulk send: %w", err))
		return
	}
	limit := a.maxSize()
	if ndjson {
		limit = int(a.bodyLimit().n)
	}
	lr := newLineReader(r.Body, limit, "messages.max_message_size")
	ms := a.s.node.Msg
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			code, err := a.s.bulkReadError(ctx, err)
			failBulk(code, fmt.Errorf("bulk send: read the request body: %w; %d messages sent before it", err, sent))
			return
		}
		mt, opts, payload := typ, msg.SendOptions{Priority: prio}, line
		if ndjson {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var bm BulkMessage
			if err := decodeJSON(bytes.NewReader(line), &bm); err != nil {
				failBulk(http.StatusBadRequest, fmt.Errorf("bulk send: line %d: expected a JSON object {\"payload\": base64, \"type\", \"priority\", \"id\"}: %v", lr.line, err))
				return
			}
			if bm.Type != "" {
				mt = bm.Type
			}
			if bm.Priority != "" {
				opts.Priority, err = parsePriority(bm.Priority)
			}
			if err == nil {
				opts.ID, err = parseMsgID(bm.ID)
			}
			if err == nil && mt == "" {
				err = errors.New("no message type: give ?type= or a \"type\" field")
			}
			if err == nil && bm.Type != "" {
				err = checkType(mt)
			}
			if err != nil {
				failBulk(http.StatusBadRequest, fmt.Errorf("bulk send: line %d: %w", lr.line, err))
				return
			}
			payload = bm.Payload
		}
		if err := a.checkSize(len(payload), "the payload"); err != nil {
			failBulk(http.StatusBadRequest, fmt.Errorf("bulk send: line %d: %w; %d messages sent before it", lr.line, err, sent))
			return
		}
		if err := ms.Send(ctx, p, mt, payload, opts); err != nil {
			failBulk(statusFor(err), fmt.Errorf("bulk send: line %d: %w; %d messages sent before it", lr.line, err, sent))
			return
		}
		sent++
	}
	writeJSON(w, http.StatusOK, SendResult{Sent: sent})
}

// appendMessageJSON appends m as one ReceivedMessage JSON line. Every field
// is JSON-safe without escaping: types are validated names, peer IDs base58,
// ids hex, times RFC 3339, payloads base64.
func appendMessageJSON(b []byte, m *msg.Message) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, m.Type...)
	b = append(b, `","from":"`...)
	b = append(b, m.From.String()...)
	b = append(b, `","id":"`...)
	b = append(b, m.ID.String()...)
	b = append(b, `","time":"`...)
	b = m.Time.AppendFormat(b, time.RFC3339Nano)
	if !m.Sent.IsZero() {
		b = append(b, `","sent":"`...)
		b = m.Sent.AppendFormat(b, time.RFC3339Nano)
	}
	b = append(b, `","payload":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.Payload)
	return append(b, "\"}\n"...)
}

func (a *msgAPI) subscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "type", "policy", "buffer", "dedup", "n"); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	typ := q.Get("type")
	info := SubscriptionInfo{Type: typ}
	policy, err := parsePolicy(q.Get("policy"))
	if err == nil {
		err = checkType(typ)
	}
	if err == nil && q.Has("buffer") {
		info.Buffer, err = parseBuffer(q.Get("buffer"), msg.DefaultSubscribeBuffer)
	}
	if err == nil && q.Has("dedup") {
		info.Dedup, err = strconv.ParseBool(q.Get("dedup"))
		if err != nil {
			err = fmt.Errorf("bad dedup %q: expected true or false", q.Get("dedup"))
		}
	}
	if err == nil && q.Has("n") {
		info.Count, err = parseCount(q.Get("n"))
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if info.Buffer == 0 {
		info.Buffer = msg.DefaultSubscribeBuffer
	}
	info.Policy = policy.String()
	sub, err := a.s.node.Msg.Subscribe(typ, msg.SubscribeOptions{Buffer: info.Buffer, Policy: policy, Dedup: info.Dedup})
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err)
		return
	}
	defer sub.Close()

	ctx := r.Context()
	// A client that stops reading blocks our writes: that is the Block
	// policy's backpressure.
	nd, stop, err := startStream(ctx, w, MessageEvent{Subscribed: &info})
	defer stop()
	if err != nil {
		return
	}
	batch := make([]*msg.Message, 0, subscribeBatch)
	line := make([]byte, 0, 512)
	var delivered int
	var lastDropped uint64
	for info.Count == 0 || delivered < info.Count {
		room := subscribeBatch
		if info.Count > 0 {
			room = min(room, info.Count-delivered)
		}
		got, err := sub.NextBatch(ctx, batch[:0:room])
		if err != nil {
			if !errors.Is(err, msg.ErrClosed) {
				return // the client is gone
			}
			a.s.log.Info("message subscription ended: the message service closed", "type", typ)
			break
		}
		for i, m := range got {
			line = appendMessageJSON(line[:0], m)
			got[i] = nil
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		delivered += len(got)
		if nd.endBatch(sub.Dropped(), &lastDropped) != nil {
			return
		}
	}
	// The stream ends while the client is still there (n messages
	// delivered, or the service closed): closing the subscription discards
	// the messages it still holds, and a last record reports them, so that
	// the client's count of drops agrees with the daemon's.
	sub.Close()
	_ = nd.endBatch(sub.Dropped(), &lastDropped)
}

func (a *msgAPI) request(w http.ResponseWriter, r *http.Request) {
	var req RequestRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-msg.md", &req) {
		return
	}
	err := checkType(req.Type)
	if err == nil {
		err = a.checkSize(len(req.Payload), "the payload")
	}
	var timeout time.Duration
	if err == nil {
		timeout, err = parseTimeoutMS(req.TimeoutMS, a.s.node.Config().Messages.RequestTimeout.Std(), "messages.request_timeout")
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	p, code, err := a.target(ctx, req.Peer)
	if err != nil {
		fail(w, code, fmt.Errorf("request %q: %w", req.Type, err))
		return
	}
	m, err := a.s.node.Msg.Request(ctx, p, req.Type, req.Payload)
	if err != nil {
		var re *msg.RemoteError
		switch {
		case errors.As(err, &re):
			fail(w, http.StatusBadGateway, fmt.Errorf("request %q to %s: the remote peer answered with an error: %s", req.Type, p, re.Message))
		case errors.Is(err, context.DeadlineExceeded):
			fail(w, http.StatusGatewayTimeout, fmt.Errorf("request %q to %s: timed out: no reply within %s", req.Type, p, timeout))
		default:
			fail(w, statusFor(err), err)
		}
		return
	}
	writeJSON(w, http.StatusOK, ReceivedMessage{Type: m.Type, From: m.From.String(), ID: m.ID.String(), Time: m.Time, Sent: m.Sent, Payload: nonNil(m.Payload)})
}

func (a *msgAPI) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "type"); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	typ := q.Get("type")
	if err := checkType(typ); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	incoming := make(chan *IncomingRequest)
	h := func(hctx context.Context, m *msg.Message) ([]byte, error) {
		in := &IncomingRequest{RID: strconv.FormatUint(a.nextRID.Add(1), 10), Type: m.Type, From: m.From.String(),
			ID: m.ID.String(), Time: m.Time, Payload: nonNil(m.Payload)}
		in.Deadline, _ = hctx.Deadline()
		ch := make(chan ReplyRequest, 1)
		a.mu.Lock()
		a.pending[in.RID] = ch
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			delete(a.pending, in.RID)
			a.mu.Unlock()
		}()
		select {
		case incoming <- in:
		case <-hctx.Done():
			return nil, fmt.Errorf("timed out: the responder for %q did not take the request before the requester's deadline", typ)
		case <-ctx.Done():
			return nil, fmt.Errorf("the responder for %q went away", typ)
		}
		select {
		case rep := <-ch:
			if rep.Error != "" {
				return nil, errors.New(rep.Error)
			}
			return rep.Payload, nil
		case <-hctx.Done():
			return nil, fmt.Errorf("timed out: the responder for %q did not reply before the requester's deadline", typ)
		case <-ctx.Done():
			return nil, fmt.Errorf("the responder for %q went away before replying", typ)
		}
	}
	if err := a.s.node.Msg.Handle(typ, h); err != nil {
		fail(w, http.StatusConflict, fmt.Errorf("answer requests of type %q: another responder already answers them (one per type): %w", typ, err))
		return
	}
	defer a.s.node.Msg.RemoveHandler(typ) // runs before cancel: no new request reaches h after

	nd, stop, err := startStream(ctx, w, RequestEvent{Handling: &HandlingInfo{Type: typ}})
	defer stop()
	if err != nil {
		return
	}
	for {
		select {
		case in := <-incoming:
			if nd.Send(RequestEvent{IncomingRequest: in}) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (a *msgAPI) reply(w http.ResponseWriter, r *http.Request) {
	var req ReplyRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-msg.md", &req) {
		return
	}
	a.mu.Lock()
	ch := a.pending[req.RID]
	delete(a.pending, req.RID)
	a.mu.Unlock()
	if ch == nil {
		fail(w, http.StatusNotFound, fmt.Errorf("reply: no pending request with rid %q: it was answered already, its requester gave up, or its responder stream ended", req.RID))
		return
	}
	if err := a.checkSize(len(req.Payload), "the reply"); err != nil {
		ch <- ReplyRequest{Error: err.Error()} // the requester learns why too
		fail(w, http.StatusBadRequest, fmt.Errorf("reply to rid %s: %w; the requester got this error instead", req.RID, err))
		return
	}
	ch <- req // buffered(1), and this is its only send: it was removed from pending
	writeJSON(w, http.StatusOK, struct{}{})
}

// ---------------------------------------------------------------- client

// SendMessage calls POST /v1/messages/send.
func (c *Client) SendMessage(ctx context.Context, req SendRequest) (SendResult, error) {
	var v SendResult
	return v, c.do(ctx, http.MethodPost, "/v1/messages/send", req, &v)
}

// SendMessages calls POST /v1/messages/send/bulk, streaming body as the
// request body: lines of payloads, or with p.NDJSON lines of BulkMessage.
// The daemon sends each message as it reads it. On failure the error says
// which line failed and how many messages were sent before it.
func (c *Client) SendMessages(ctx context.Context, p BulkParams, body io.Reader) (SendResult, error) {
	q := url.Values{"peer": {p.Peer}}
	if p.Type != "" {
		q.Set("type", p.Type)
	}
	if p.Priority != "" {
		q.Set("priority", p.Priority)
	}
	return postBulk[SendResult](ctx, c, "/v1/messages/send/bulk", q, p.NDJSON, body)
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

// parseMessageLine decodes a message record in the exact form
// appendMessageJSON writes (no escapes, known fields), without reflection;
// ok is false for anything else, which is then decoded by encoding/json.
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

// RequestStream is an open responder registration (GET /v1/messages/handle):
// this client answers the requests of one type until Close or its ctx ends.
type RequestStream struct {
	s    *ndjsonStream
	Type string
}

// HandleRequests registers this client as the responder of typ. The daemon
// refuses a second responder for a type with a *StatusError of code 409.
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
