package msg

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the service's counters, shaped for a JSON API.
type Stats struct {
	// Types has one entry per known type plus OtherType for everything else.
	Types         map[string]TypeStats `json:"types"`
	Subscriptions []SubscriptionStats  `json:"subscriptions"`
	Peers         []PeerStats          `json:"peers"`
	// BadFrames counts frames rejected as oversized or malformed.
	BadFrames uint64 `json:"bad_frames"`
	// LateReplies counts replies that arrived after their Request gave up.
	LateReplies uint64 `json:"late_replies"`
	// FailedReplies counts replies this node could not send, including
	// those dropped because the requester's send queue stayed full for
	// Options.ReplyTimeout (or, for "no handler" replies, was full).
	FailedReplies uint64 `json:"failed_replies"`
	// RefusedStreams counts inbound streams reset because the resource
	// manager refused them to the service (per-peer or total stream limit).
	RefusedStreams uint64 `json:"refused_streams"`
	// RefusedMemory counts inbound streams reset because the resource
	// manager refused memory for a frame being read.
	RefusedMemory uint64 `json:"refused_memory"`
	// SlowFrames counts inbound streams reset because a frame larger than
	// the reused 64 KiB buffer did not arrive in time (Options.FrameGrace).
	SlowFrames uint64 `json:"slow_frames"`
	// InboundFrameBytes is the memory reserved right now for frames being
	// read (beyond each stream's reused 64 KiB buffer).
	InboundFrameBytes int64 `json:"inbound_frame_bytes"`
	// HandlerPayloadBytes is the payload memory held right now by running
	// request handlers (payloads that came in frames over 64 KiB).
	HandlerPayloadBytes int64 `json:"handler_payload_bytes"`
	PendingRequests     int   `json:"pending_requests"`
}

// TypeStats counts one message type. Requests and replies are included in
// the in/out counts.
type TypeStats struct {
	MsgsIn   uint64 `json:"msgs_in"`
	BytesIn  uint64 `json:"bytes_in"`   // payload bytes
	MsgsOut  uint64 `json:"msgs_out"`   // written to a stream
	BytesOut uint64 `json:"bytes_out"`  // payload bytes
	Dropped  uint64 `json:"dropped"`    // by subscription overflow policy or Close, over all subscriptions
	Dups     uint64 `json:"duplicates"` // discarded by Dedup subscriptions
	// Unhandled counts messages with no subscriber (or requests with no
	// handler) on arrival.
	Unhandled uint64 `json:"unhandled"`
	// SendFailed counts messages queued here but lost when their stream failed
	// or the service closed.
	SendFailed  uint64 `json:"send_failed"`
	Subscribers int    `json:"subscribers"`
	Handler     bool   `json:"handler"`
	Queued      int    `json:"queued"` // in this type's subscriptions
}

// SubscriptionStats describes one open subscription.
type SubscriptionStats struct {
	ID          uint64 `json:"id"`
	Type        string `json:"type"`
	Policy      Policy `json:"policy"`
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

// PeerStats describes the outbound side of one peer: an open stream, or a
// failed one whose losses the next Send will report.
type PeerStats struct {
	Peer   peer.ID     `json:"peer"`
	Open   bool        `json:"open"`
	Queued QueueDepths `json:"queued"`
	Sent   uint64      `json:"sent"`   // on the current stream
	Failed uint64      `json:"failed"` // on the current stream
	// Lost and LastError describe a failed stream not yet reported by Send.
	Lost      uint64    `json:"lost,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	FailedAt  time.Time `json:"failed_at,omitzero"`
}

// Stats returns a snapshot of the counters.
func (s *Service) Stats() Stats {
	st := Stats{
		Types:         make(map[string]TypeStats),
		BadFrames:     s.badFrames.Load(),
		LateReplies:   s.lateReplies.Load(),
		FailedReplies: s.droppedReplies.Load(),

		RefusedStreams:    s.refusedStreams.Load(),
		RefusedMemory:     s.refusedMemory.Load(),
		SlowFrames:        s.slowFrames.Load(),
		InboundFrameBytes: s.inboundBytes.Load(),

		HandlerPayloadBytes: s.handlerBytes.Load(),
	}
	for name, ts := range *s.types.Load() {
		st.Types[name] = ts.stats()
	}
	st.Types[OtherType] = s.other.stats()

	s.mu.Lock()
	subs := make([]*Subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	for p, f := range s.failures {
		st.Peers = append(st.Peers, PeerStats{Peer: p, Lost: f.lost, LastError: f.err.Error(), FailedAt: f.at})
	}
	s.mu.Unlock()
	sort.Slice(subs, func(i, j int) bool { return subs[i].id < subs[j].id })
	for _, sub := range subs {
		n, b := sub.queuedBoth()
		ss := SubscriptionStats{
			ID: sub.id, Type: sub.ts.name, Policy: sub.policy, Buffer: sub.buffer, MaxBytes: sub.maxBytes, Dedup: sub.dedup != nil,
			Queued: n, QueuedBytes: b, Delivered: sub.delivered.Load(), Dropped: sub.dropped.Load(), Duplicates: sub.duplicates.Load(),
		}
		st.Subscriptions = append(st.Subscriptions, ss)
		t := st.Types[ss.Type]
		t.Queued += ss.Queued
		st.Types[ss.Type] = t
	}

	for _, op := range s.livePeers() {
		d := op.depths()
		ps := PeerStats{
			Peer: op.id, Open: true, Sent: op.sent.Load(), Failed: op.failed.Load(),
			Queued: QueueDepths{High: d[High], Normal: d[Normal], Low: d[Low]},
		}
		merged := false
		for i := range st.Peers {
			if st.Peers[i].Peer == op.id { // reopened after a failure not yet reported
				lost, last, at := st.Peers[i].Lost, st.Peers[i].LastError, st.Peers[i].FailedAt
				st.Peers[i] = ps
				st.Peers[i].Lost, st.Peers[i].LastError, st.Peers[i].FailedAt = lost, last, at
				merged = true
			}
		}
		if !merged {
			st.Peers = append(st.Peers, ps)
		}
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Peer < st.Peers[j].Peer })

	s.reqMu.Lock()
	st.PendingRequests = len(s.pending)
	s.reqMu.Unlock()
	return st
}

func (s *Service) livePeers() []*outPeer {
	s.pmu.RLock()
	defer s.pmu.RUnlock()
	out := make([]*outPeer, 0, len(s.peers))
	for _, op := range s.peers {
		out = append(out, op)
	}
	return out
}

func (ts *typeState) stats() TypeStats {
	t := TypeStats{
		MsgsIn: ts.msgsIn.Load(), BytesIn: ts.bytesIn.Load(),
		MsgsOut: ts.msgsOut.Load(), BytesOut: ts.bytesOut.Load(),
		Dropped: ts.dropped.Load(), Dups: ts.duplicates.Load(),
		Unhandled: ts.unhandled.Load(), SendFailed: ts.sendFailed.Load(),
		Handler: ts.handler.Load() != nil,
	}
	if subs := ts.subs.Load(); subs != nil {
		t.Subscribers = len(*subs)
	}
	return t
}

// metrics exports the counters to Prometheus. The counters themselves are
// the atomics the service keeps anyway; the collector reads them at scrape
// time, so metrics cost nothing on the message path. Labels are bounded: a
// type label exists only for known types (see OtherType).
type metrics struct {
	reg       prometheus.Registerer
	collector *collector
	latency   *prometheus.HistogramVec
}

func newMetrics(s *Service, reg prometheus.Registerer) (*metrics, error) {
	constLabels := prometheus.Labels{"network": s.opts.Network}
	m := &metrics{
		reg:       reg,
		collector: newCollector(s, constLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:   "warren",
			Subsystem:   "msg",
			Name:        "request_duration_seconds",
			Help:        "Request round-trip time by type and outcome (ok, remote_error, timeout, error).",
			ConstLabels: constLabels,
			Buckets:     prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"type", "outcome"}),
	}
	if err := reg.Register(m.collector); err != nil {
		return nil, fmt.Errorf("msg: register metrics: %w", err)
	}
	if err := reg.Register(m.latency); err != nil {
		reg.Unregister(m.collector)
		return nil, fmt.Errorf("msg: register request latency histogram: %w", err)
	}
	return m, nil
}

func (m *metrics) unregister() {
	m.reg.Unregister(m.collector)
	m.reg.Unregister(m.latency)
}

func (m *metrics) observeRequest(s *Service, typ string, start time.Time, err error) {
	label := OtherType
	if s.knownType(typ) != nil {
		label = typ
	}
	outcome := "ok"
	var re *RemoteError
	switch {
	case err == nil:
	case errors.As(err, &re):
		outcome = "remote_error"
	case errors.Is(err, context.DeadlineExceeded):
		outcome = "timeout"
	default:
		outcome = "error"
	}
	m.latency.WithLabelValues(label, outcome).Observe(time.Since(start).Seconds())
}

type collector struct {
	s                                          *Service
	msgs, bytes, dropped, unhandled, dups      *prometheus.Desc
	sendQueue, subQueue, subDropped            *prometheus.Desc
	badFrames, lateReplies, failedReplies, req *prometheus.Desc
	refused, frameBytes, handlerBytes          *prometheus.Desc
}

const subDroppedHelp = "Messages each open subscription lost to its overflow policy, by local subscription id and type. " +
	"The series ends when the subscription closes; messages discarded by closing it are in dropped_total."

func newCollector(s *Service, cl prometheus.Labels) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("warren_msg_"+name, help, labels, cl)
	}
	return &collector{
		s:             s,
		msgs:          d("messages_total", "Direct messages by direction (in, out) and type.", "direction", "type"),
		bytes:         d("payload_bytes_total", "Payload bytes by direction (in, out) and type.", "direction", "type"),
		dropped:       d("dropped_total", "Messages lost by type and reason (subscriber_overflow, send_failed).", "type", "reason"),
		unhandled:     d("unhandled_total", "Messages that arrived with no subscriber or handler, by type.", "type"),
		dups:          d("duplicates_total", "Messages discarded by dedup subscriptions, by type.", "type"),
		sendQueue:     d("send_queue_depth", "Messages queued for sending, over all peers, by priority.", "priority"),
		subQueue:      d("subscription_queue_depth", "Messages queued in subscriptions, by type.", "type"),
		subDropped:    d("subscription_dropped_total", subDroppedHelp, "subscription", "type"),
		badFrames:     d("bad_frames_total", "Frames rejected as oversized or malformed."),
		lateReplies:   d("late_replies_total", "Replies that arrived after their request gave up."),
		failedReplies: d("failed_replies_total", "Replies of local handlers that could not be sent."),
		req:           d("pending_requests", "Requests waiting for a reply."),
		refused: d("refused_streams_total", "Inbound streams reset because the resource manager refused them "+
			"(reason stream_limit), refused memory for a frame (reason memory_limit), or because a large frame "+
			"did not arrive in time (reason slow_frame).", "reason"),
		frameBytes:   d("inbound_frame_bytes", "Memory reserved for inbound frames being read."),
		handlerBytes: d("handler_payload_bytes", "Payload memory held by running request handlers."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.msgs, c.bytes, c.dropped, c.unhandled, c.dups, c.sendQueue, c.subQueue, c.subDropped, c.badFrames, c.lateReplies, c.failedReplies, c.req, c.refused, c.frameBytes, c.handlerBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for typ, t := range st.Types {
		counter(c.msgs, t.MsgsIn, "in", typ)
		counter(c.msgs, t.MsgsOut, "out", typ)
		counter(c.bytes, t.BytesIn, "in", typ)
		counter(c.bytes, t.BytesOut, "out", typ)
		counter(c.dropped, t.Dropped, typ, "subscriber_overflow")
		counter(c.dropped, t.SendFailed, typ, "send_failed")
		counter(c.unhandled, t.Unhandled, typ)
		counter(c.dups, t.Dups, typ)
		gauge(c.subQueue, t.Queued, typ)
	}
	// Subscription ids are local, so remote peers cannot create these
	// series, and a closed subscription's series ends with it.
	for _, sub := range st.Subscriptions {
		counter(c.subDropped, sub.Dropped, strconv.FormatUint(sub.ID, 10), sub.Type)
	}
	var q QueueDepths
	for _, p := range st.Peers {
		q.High += p.Queued.High
		q.Normal += p.Queued.Normal
		q.Low += p.Queued.Low
	}
	gauge(c.sendQueue, q.High, "high")
	gauge(c.sendQueue, q.Normal, "normal")
	gauge(c.sendQueue, q.Low, "low")
	counter(c.badFrames, st.BadFrames)
	counter(c.lateReplies, st.LateReplies)
	counter(c.failedReplies, st.FailedReplies)
	gauge(c.req, st.PendingRequests)
	counter(c.refused, st.RefusedStreams, "stream_limit")
	counter(c.refused, st.RefusedMemory, "memory_limit")
	counter(c.refused, st.SlowFrames, "slow_frame")
	gauge(c.frameBytes, int(st.InboundFrameBytes))
	gauge(c.handlerBytes, int(st.HandlerPayloadBytes))
}
