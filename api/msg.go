package api

// Handlers of direct messages: send (one, or a streamed bulk body),
// subscribe (an NDJSON stream of received messages with visible drops),
// request, answer requests (an NDJSON stream of incoming requests plus a
// reply endpoint) and stats. docs/api-msg.md is the reference of these
// endpoints.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
)

// subscribeBatch is the most messages a subscription stream takes from the
// dispatcher per write (one flush per batch).
const subscribeBatch = 256

// msgAPI holds the state of the message endpoints of one Server.
type msgAPI struct {
	s       *Server
	nextRID atomic.Uint64
	mu      sync.Mutex
	pending map[string]chan client.ReplyRequest // by RID; buffered(1)
}

func newMsgAPI(s *Server) *msgAPI {
	return &msgAPI{s: s, pending: map[string]chan client.ReplyRequest{}}
}

func (a *msgAPI) routes() []route {
	// Reaching the peer: its ID is this node's own (invalid_argument), the
	// dial fails or times out, or the service is closing.
	reach := []string{client.CodeUnreachable, client.CodeTimeout, client.CodeUnavailable}
	bulk := []string{client.CodeInvalidArgument, client.CodeUnsupportedMediaType, client.CodeBodyTooLarge, client.CodeBodyTimeout}
	return []route{
		{pattern: "POST /v1/messages/send", h: a.send, codes: with(bodyCodes, reach...)},
		{pattern: "POST /v1/messages/send/bulk", kind: kindUpload, h: a.sendBulk, codes: with(bulk, reach...)},
		{pattern: "GET /v1/messages/subscribe", kind: kindStream, h: a.subscribe, codes: []string{client.CodeInvalidArgument, client.CodeUnavailable}},
		{pattern: "POST /v1/messages/request", h: a.request, codes: with(bodyCodes, with(reach, client.CodeRemoteError)...)},
		{pattern: "GET /v1/messages/handle", kind: kindStream, h: a.handle, codes: []string{client.CodeInvalidArgument, client.CodeConflict}},
		{pattern: "POST /v1/messages/reply", h: a.reply, codes: with(bodyCodes, client.CodeNotFound)},
		{pattern: "GET /v1/messages/stats", h: a.stats},
	}
}

func (a *msgAPI) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, messageStats(a.s.node.Msg().Stats()))
}

// messageStats is the wire form of msg.Stats.
func messageStats(st msg.Stats) client.MessageStats {
	out := client.MessageStats{
		Types:         make(map[string]client.MessageTypeStats, len(st.Types)),
		Subscriptions: make([]client.MessageSubscriptionStats, 0, len(st.Subscriptions)),
		Peers:         make([]client.MessagePeerStats, 0, len(st.Peers)),
		BadFrames:     st.BadFrames, LateReplies: st.LateReplies, FailedReplies: st.FailedReplies,
		RefusedStreams: st.RefusedStreams, RefusedMemory: st.RefusedMemory,
		InboundFrameBytes: st.InboundFrameBytes, PendingRequests: st.PendingRequests,
		SlowFrames: st.SlowFrames, HandlerPayloadBytes: st.HandlerPayloadBytes,
	}
	for name, t := range st.Types {
		out.Types[name] = client.MessageTypeStats{MsgsIn: t.MsgsIn, BytesIn: t.BytesIn, MsgsOut: t.MsgsOut, BytesOut: t.BytesOut,
			Dropped: t.Dropped, Dups: t.Dups, Unhandled: t.Unhandled, SendFailed: t.SendFailed,
			Subscribers: t.Subscribers, Handler: t.Handler, Queued: t.Queued}
	}
	for _, s := range st.Subscriptions {
		out.Subscriptions = append(out.Subscriptions, client.MessageSubscriptionStats{ID: s.ID, Type: s.Type, Policy: s.Policy.String(),
			Buffer: s.Buffer, MaxBytes: s.MaxBytes, Dedup: s.Dedup, Queued: s.Queued, QueuedBytes: s.QueuedBytes,
			Delivered: s.Delivered, Dropped: s.Dropped, Duplicates: s.Duplicates})
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, client.MessagePeerStats{Peer: p.Peer.String(), Open: p.Open,
			Queued: client.QueueDepths{High: p.Queued.High, Normal: p.Queued.Normal, Low: p.Queued.Low},
			Sent:   p.Sent, Failed: p.Failed, Lost: p.Lost, LastError: p.LastError, FailedAt: p.FailedAt})
	}
	return out
}

func (a *msgAPI) maxSize() int { return a.s.node.Config().Messages.MaxMessageSize }

// bodyLimit is the largest JSON body that can carry a maximal payload.
func (a *msgAPI) bodyLimit() bodyLimit {
	return bodyLimit{n: int64(base64.StdEncoding.EncodedLen(a.maxSize())) + 64<<10,
		why: fmt.Sprintf("the payload is larger than messages.max_message_size (%d bytes) allows", a.maxSize())}
}

func checkType(typ string) error {
	if err := msg.ValidateType(typ); err != nil {
		return invalid(err)
	}
	return nil
}

func parsePriority(s string) (msg.Priority, error) {
	p, err := msg.ParsePriority(s)
	if err != nil {
		return 0, invalidf("bad priority %q: expected high, normal or low", s)
	}
	return p, nil
}

func parsePolicy(s string) (msg.Policy, error) {
	p, err := msg.ParsePolicy(s)
	if err != nil {
		return 0, invalidf("bad policy %q: expected block, drop-oldest or drop-newest", s)
	}
	return p, nil
}

func parseMsgID(s string) (msg.ID, error) {
	if s == "" {
		return msg.ID{}, nil
	}
	id, err := msg.ParseID(s)
	if err != nil {
		return id, invalidf("bad message id %q: expected 32 hex digits", s)
	}
	return id, nil
}

// target parses a peer ID and makes sure this node is connected to it
// (looking it up in the DHT when its address is unknown). The error's code
// says whose fault a failure is.
func (a *msgAPI) target(ctx context.Context, s string) (peer.ID, error) {
	p, err := node.ParsePeerID(s)
	if err != nil {
		return "", invalid(err)
	}
	if p == a.s.node.ID() {
		return "", invalidf("peer %s is this node's own peer ID: messages go to other peers", p)
	}
	if err := a.s.node.ConnectPeer(ctx, p); err != nil {
		return "", orElse(client.CodeUnreachable, fmt.Errorf("reach peer: %w", err))
	}
	return p, nil
}

func (a *msgAPI) checkSize(n int, what string) error {
	if n > a.maxSize() {
		return invalidf("%s is %d bytes, over the limit of %d bytes (messages.max_message_size)", what, n, a.maxSize())
	}
	return nil
}

func (a *msgAPI) send(w http.ResponseWriter, r *http.Request) {
	var req client.SendRequest
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
		writeError(w, err)
		return
	}
	p, err := a.target(r.Context(), req.Peer)
	if err != nil {
		writeError(w, fmt.Errorf("send %q: %w", req.Type, err))
		return
	}
	if err := a.s.node.Msg().Send(r.Context(), p, req.Type, req.Payload, msg.SendOptions{Priority: prio, ID: id}); err != nil {
		writeError(w, orElse(client.CodeUnreachable, err))
		return
	}
	writeJSON(w, http.StatusOK, client.SendResult{Sent: 1})
}

func (a *msgAPI) sendBulk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var sent int64
	resp := newBulkResponse(w, r)
	failBulk := func(err error) {
		status, code := classify(err)
		resp.fail(status, client.BulkSendError{Error: oneLine(err.Error()), Code: code, Sent: sent})
	}
	if err := checkQuery(q, "peer", "type", "priority"); err != nil {
		failBulk(err)
		return
	}
	ndjson, err := bulkContentType(r, "bulk send", "one payload per line")
	if err != nil {
		failBulk(err)
		return
	}
	typ, prioText := q.Get("type"), q.Get("priority")
	prio, err := parsePriority(prioText)
	if err == nil && (typ != "" || !ndjson) {
		err = checkType(typ)
	}
	if err != nil {
		failBulk(err)
		return
	}
	ctx := r.Context()
	p, err := a.target(ctx, q.Get("peer"))
	if err != nil {
		failBulk(fmt.Errorf("bulk send: %w", err))
		return
	}
	limit := a.maxSize()
	if ndjson {
		limit = int(a.bodyLimit().n)
	}
	lr := newLineReader(r.Body, limit, "messages.max_message_size")
	ms := a.s.node.Msg()
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			failBulk(fmt.Errorf("bulk send: read the request body: %w; %d messages sent before it", a.s.bulkReadError(ctx, err), sent))
			return
		}
		mt, opts, payload := typ, msg.SendOptions{Priority: prio}, line
		if ndjson {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var bm client.BulkMessage
			if err := decodeJSON(bytes.NewReader(line), &bm); err != nil {
				failBulk(invalidf("bulk send: line %d: expected a JSON object {\"payload\": base64, \"type\", \"priority\", \"id\"}: %v", lr.line, err))
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
				err = invalidf("no message type: give ?type= or a \"type\" field")
			}
			if err == nil && bm.Type != "" {
				err = checkType(mt)
			}
			if err != nil {
				failBulk(fmt.Errorf("bulk send: line %d: %w", lr.line, err))
				return
			}
			payload = bm.Payload
		}
		if err := a.checkSize(len(payload), "the payload"); err != nil {
			failBulk(fmt.Errorf("bulk send: line %d: %w; %d messages sent before it", lr.line, err, sent))
			return
		}
		if err := ms.Send(ctx, p, mt, payload, opts); err != nil {
			failBulk(orElse(client.CodeUnreachable, fmt.Errorf("bulk send: line %d: %w; %d messages sent before it", lr.line, err, sent)))
			return
		}
		sent++
	}
	writeJSON(w, http.StatusOK, client.SendResult{Sent: sent})
}

// appendMessageJSON appends m as one client.ReceivedMessage JSON line.
// Every field is JSON-safe without escaping: types are validated names,
// peer IDs base58, ids hex, times RFC 3339, payloads base64.
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
		writeError(w, err)
		return
	}
	typ := q.Get("type")
	info := client.SubscriptionInfo{Type: typ}
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
			err = invalidf("bad dedup %q: expected true or false", q.Get("dedup"))
		}
	}
	if err == nil && q.Has("n") {
		info.Count, err = parseCount(q.Get("n"))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if info.Buffer == 0 {
		info.Buffer = msg.DefaultSubscribeBuffer
	}
	info.Policy = policy.String()
	sub, err := a.s.node.Msg().Subscribe(typ, msg.SubscribeOptions{Buffer: info.Buffer, Policy: policy, Dedup: info.Dedup})
	if err != nil {
		writeError(w, withCode(client.CodeUnavailable, err))
		return
	}
	defer sub.Close()

	ctx := r.Context()
	// A client that stops reading blocks our writes: that is the Block
	// policy's backpressure.
	nd, stop, err := startStream(ctx, w, client.MessageEvent{Subscribed: &info})
	defer stop()
	if err != nil {
		return
	}
	batch := make([]*msg.Message, 0, subscribeBatch)
	line := make([]byte, 0, 512)
	var delivered int
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
			if nd.Write(line) != nil {
				return
			}
		}
		delivered += len(got)
		if nd.EndBatch(sub.Dropped()) != nil {
			return
		}
	}
	// The stream ends while the client is still there: closing the
	// subscription discards the messages it still holds, and the last
	// record reports them.
	sub.Close()
	nd.End(sub.Dropped())
}

func (a *msgAPI) request(w http.ResponseWriter, r *http.Request) {
	var req client.RequestRequest
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
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	p, err := a.target(ctx, req.Peer)
	if err != nil {
		writeError(w, fmt.Errorf("request %q: %w", req.Type, err))
		return
	}
	m, err := a.s.node.Msg().Request(ctx, p, req.Type, req.Payload)
	if err != nil {
		var re *msg.RemoteError
		switch {
		case errors.As(err, &re):
			writeError(w, withCode(client.CodeRemoteError, fmt.Errorf("request %q to %s: the remote peer answered with an error: %s", req.Type, p, re.Message)))
		case errors.Is(err, msg.ErrTooLarge):
			// The peer answered, with more than this node accepts.
			writeError(w, withCode(client.CodeRemoteError, err))
		case errors.Is(err, node.ErrUnreachable):
			// Not a timeout even if a lookup timed out: the error says what was tried.
			writeError(w, withCode(client.CodeUnreachable, err))
		case errors.Is(err, msg.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			writeError(w, withCode(client.CodeTimeout, fmt.Errorf("request %q to %s: timed out: no reply within %s", req.Type, p, timeout)))
		default:
			writeError(w, orElse(client.CodeUnreachable, err))
		}
		return
	}
	writeJSON(w, http.StatusOK, client.ReceivedMessage{Type: m.Type, From: m.From.String(), ID: m.ID.String(), Time: m.Time, Sent: m.Sent, Payload: nonNil(m.Payload)})
}

func (a *msgAPI) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "type"); err != nil {
		writeError(w, err)
		return
	}
	typ := q.Get("type")
	if err := checkType(typ); err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	incoming := make(chan *client.IncomingRequest)
	h := func(hctx context.Context, m *msg.Message) ([]byte, error) {
		in := &client.IncomingRequest{RID: strconv.FormatUint(a.nextRID.Add(1), 10), Type: m.Type, From: m.From.String(),
			ID: m.ID.String(), Time: m.Time, Payload: nonNil(m.Payload)}
		in.Deadline, _ = hctx.Deadline()
		ch := make(chan client.ReplyRequest, 1)
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
	reg, err := a.s.node.Msg().Handle(typ, h)
	if errors.Is(err, msg.ErrExists) {
		writeError(w, fmt.Errorf("answer requests of type %q: another responder already answers them (one per type): %w", typ, err))
		return
	} else if err != nil {
		writeError(w, err)
		return
	}
	defer reg.Close() // runs before cancel: no new request reaches h after

	nd, stop, err := startStream(ctx, w, client.RequestEvent{Handling: &client.HandlingInfo{Type: typ}})
	defer stop()
	if err != nil {
		return
	}
	for {
		select {
		case in := <-incoming:
			if nd.Send(client.RequestEvent{IncomingRequest: in}) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func (a *msgAPI) reply(w http.ResponseWriter, r *http.Request) {
	var req client.ReplyRequest
	if !a.s.readBody(w, r, a.bodyLimit(), "docs/api-msg.md", &req) {
		return
	}
	a.mu.Lock()
	ch := a.pending[req.RID]
	delete(a.pending, req.RID)
	a.mu.Unlock()
	if ch == nil {
		writeError(w, withCode(client.CodeNotFound, fmt.Errorf("reply: no pending request with rid %q: it was answered already, its requester gave up, or its responder stream ended", req.RID)))
		return
	}
	if err := a.checkSize(len(req.Payload), "the reply"); err != nil {
		ch <- client.ReplyRequest{Error: err.Error()} // the requester learns why too
		writeError(w, fmt.Errorf("reply to rid %s: %w; the requester got this error instead", req.RID, err))
		return
	}
	ch <- req // buffered(1), and this is its only send: it was removed from pending
	writeJSON(w, http.StatusOK, client.Empty{})
}
