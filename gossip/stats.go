package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/ratelog"
)

// Why a message was dropped. Every place pubsub (or this package) can lose a
// message it had in hand has a reason here.
const (
	// DropOutbound: a peer's outbound queue was full (or the peer had
	// none), so one copy of a message to that peer was not sent.
	DropOutbound = "outbound_queue_full"
	// DropValidationQueue: the validation queue was full on receipt.
	DropValidationQueue = "validation_queue_full"
	// DropValidationThrottled: too many validations were running.
	DropValidationThrottled = "validation_throttled"
	// DropSubscriberSlow: pubsub's channel to a subscription was full.
	DropSubscriberSlow = "subscriber_slow"
	// DropSubscriptionFull: a Subscription's buffer was full (reader behind).
	DropSubscriptionFull = "subscription_full"
)

// dropReason indexes the Drop* reasons in counters.
type dropReason int

const (
	dropOutbound dropReason = iota
	dropValidationQueue
	dropValidationThrottled
	dropSubscriberSlow
	dropSubscriptionFull
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropOutbound:
		return DropOutbound
	case dropValidationQueue:
		return DropValidationQueue
	case dropValidationThrottled:
		return DropValidationThrottled
	case dropSubscriberSlow:
		return DropSubscriberSlow
	case dropSubscriptionFull:
		return DropSubscriptionFull
	}
	return fmt.Sprintf("dropReason(%d)", int(r))
}

// Why a message was refused. These are decisions, not losses.
const (
	RejectValidator    = "validator_reject"  // the topic's Validator returned Reject
	IgnoreValidator    = "validator_ignore"  // the topic's Validator returned Ignore
	RejectSignature    = "invalid_signature" // missing or bad signature
	RejectPolicyReason = "policy"            // blacklisted peer, self-origin echo, unexpected auth fields
)

// rejectReason indexes the Reject* reasons in counters.
type rejectReason int

const (
	rejectValidator rejectReason = iota
	ignoreValidator
	rejectSignature
	rejectPolicy
	numRejectReasons
)

func (r rejectReason) String() string {
	switch r {
	case rejectValidator:
		return RejectValidator
	case ignoreValidator:
		return IgnoreValidator
	case rejectSignature:
		return RejectSignature
	case rejectPolicy:
		return RejectPolicyReason
	}
	return fmt.Sprintf("rejectReason(%d)", int(r))
}

// otherTopic labels counts for messages on topics this host has not joined
// (or on another network): it keeps the label set bounded.
const otherTopic = "_other"

// metrics are the Prometheus collectors of one Service. They always exist;
// they are registered only when Options.Registerer is set.
type metrics struct {
	published, received *prometheus.CounterVec
	dropped, rejected   *prometheus.CounterVec
	controlDropped      prometheus.Counter
	subsRefused         *prometheus.CounterVec
	advertiseFailures   prometheus.Counter
	refusedStreams      *prometheus.CounterVec
	refusedIn           prometheus.Counter // refusedStreams{direction="inbound"}
	refusedOut          prometheus.Counter // refusedStreams{direction="outbound"}
	reg                 prometheus.Registerer
	registered          []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "published_total",
			Help: "Messages published by this node, per topic.",
		}, []string{"topic"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "received_total",
			Help: "Messages received from peers and accepted, per topic.",
		}, []string{"topic"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "dropped_total",
			Help: "Messages (or per-peer copies of messages) dropped, per topic and reason.",
		}, []string{"topic", "reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "rejected_total",
			Help: "Messages refused by validation, per topic and reason.",
		}, []string{"topic", "reason"}),
		controlDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "control_dropped_total",
			Help: "Control-only RPCs (IHAVE/IWANT/GRAFT/PRUNE) dropped on a full peer queue; pubsub retries these.",
		}),
		subsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "subscriptions_refused_total",
			Help: "Topic subscriptions announced by peers and not tracked, per reason " +
				"(" + RefuseOtherNetwork + ", " + RefuseRPCLimit + ", " + RefusePeerLimit + ", " + RefusePeerGone + ").",
		}, []string{"reason"}),
		advertiseFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "advertise_failures_total",
			Help: "Failed advertisements of a joined topic through discovery (each is retried).",
		}),
		refusedStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "warren", Subsystem: "gossip", Name: "refused_streams_total",
			Help: "Gossip streams refused by the resource manager (service " + ServiceName + " or a broader scope) and reset, " +
				"per direction (" + DirInbound + ", " + DirOutbound + ").",
		}, []string{"direction"}),
		reg: reg,
	}
	m.refusedIn = m.refusedStreams.WithLabelValues(DirInbound)
	m.refusedOut = m.refusedStreams.WithLabelValues(DirOutbound)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.published, m.received, m.dropped, m.rejected, m.controlDropped,
		m.subsRefused, m.advertiseFailures, m.refusedStreams} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			if errAlreadyRegistered(err) {
				return nil, fmt.Errorf("register gossip metrics: %w (one Service per Registerer; "+
					"wrap it with prometheus.WrapRegistererWith to run several)", err)
			}
			return nil, fmt.Errorf("register gossip metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

// topicStats counts one topic's traffic. Safe for concurrent use; updated
// from pubsub's goroutines through the tracer.
type topicStats struct {
	name          string
	log           *slog.Logger
	rlog          *ratelog.Logger // for warnings remote peers can cause
	published     atomic.Uint64
	received      atomic.Uint64
	dropped       [numDropReasons]atomic.Uint64
	droppedTotal  atomic.Uint64
	rejected      [numRejectReasons]atomic.Uint64
	subscriptions atomic.Int64

	meshMu sync.Mutex
	mesh   map[peer.ID]struct{} // peers in this node's GossipSub mesh for the topic

	mPublished, mReceived prometheus.Counter
	mDropped              [numDropReasons]prometheus.Counter
	mRejected             [numRejectReasons]prometheus.Counter
}

func newTopicStats(name string, m *metrics, log *slog.Logger, rlog *ratelog.Logger) *topicStats {
	st := &topicStats{
		name:       name,
		log:        log,
		rlog:       rlog,
		mesh:       make(map[peer.ID]struct{}),
		mPublished: m.published.WithLabelValues(name),
		mReceived:  m.received.WithLabelValues(name),
	}
	for r := range numDropReasons {
		st.mDropped[r] = m.dropped.WithLabelValues(name, r.String())
	}
	for r := range numRejectReasons {
		st.mRejected[r] = m.rejected.WithLabelValues(name, r.String())
	}
	return st
}

func (st *topicStats) addPublished() {
	st.mPublished.Inc()
	st.published.Add(1)
}

func (st *topicStats) addReceived() {
	st.mReceived.Inc()
	st.received.Add(1)
}

// addDropped counts one drop. The first drop on a topic, and every 1024th
// after it, is logged at Warn so a loss is never silent even without
// metrics; every drop is logged at Debug. Peers cause drops (a slow reader,
// a flood), so the Warn goes through the rate-limited logger: one line per
// window for all topics, then a summary.
func (st *topicStats) addDropped(reason dropReason) {
	st.mDropped[reason].Inc()
	st.dropped[reason].Add(1)
	n := st.droppedTotal.Add(1)
	if n == 1 || n%1024 == 0 {
		st.rlog.Warn("gossip: messages dropped", "topic", st.name, "reason", reason, "dropped_total", n)
	} else {
		st.log.Debug("gossip: message dropped", "topic", st.name, "reason", reason)
	}
}

func (st *topicStats) graft(p peer.ID) {
	st.meshMu.Lock()
	st.mesh[p] = struct{}{}
	st.meshMu.Unlock()
}

func (st *topicStats) prune(p peer.ID) {
	st.meshMu.Lock()
	delete(st.mesh, p)
	st.meshMu.Unlock()
}

func (st *topicStats) meshSize() int {
	st.meshMu.Lock()
	defer st.meshMu.Unlock()
	return len(st.mesh)
}

func (st *topicStats) addRejected(reason rejectReason) {
	st.mRejected[reason].Inc()
	st.rejected[reason].Add(1)
}

// TopicInfo describes one joined topic.
type TopicInfo struct {
	Name          string `json:"name"`
	Peers         int    `json:"peers"`         // connected peers subscribed to (or relaying) it
	Mesh          int    `json:"mesh"`          // of those, peers in this node's GossipSub mesh (relay set)
	Subscriptions int    `json:"subscriptions"` // open local Subscriptions
	Published     uint64 `json:"published"`     // messages this node published
	Received      uint64 `json:"received"`      // messages received from peers and accepted
	Dropped       uint64 `json:"dropped"`       // losses, all reasons (see DroppedBy)
	Rejected      uint64 `json:"rejected"`      // refused by validation, all reasons (see RejectedBy)
	// DroppedBy and RejectedBy break the totals down by reason (Drop*,
	// Reject* constants); reasons with a zero count are left out.
	DroppedBy  map[string]uint64 `json:"dropped_by,omitempty"`
	RejectedBy map[string]uint64 `json:"rejected_by,omitempty"`
}

func (st *topicStats) info(peers int) TopicInfo {
	ti := TopicInfo{
		Name:          st.name,
		Peers:         peers,
		Mesh:          st.meshSize(),
		Subscriptions: int(st.subscriptions.Load()),
		Published:     st.published.Load(),
		Received:      st.received.Load(),
	}
	for r := range numDropReasons {
		if n := st.dropped[r].Load(); n > 0 {
			if ti.DroppedBy == nil {
				ti.DroppedBy = make(map[string]uint64)
			}
			ti.DroppedBy[r.String()] = n
			ti.Dropped += n
		}
	}
	for r := range numRejectReasons {
		if n := st.rejected[r].Load(); n > 0 {
			if ti.RejectedBy == nil {
				ti.RejectedBy = make(map[string]uint64)
			}
			ti.RejectedBy[r.String()] = n
			ti.Rejected += n
		}
	}
	return ti
}

// errAlreadyRegistered reports whether err is Prometheus's duplicate
// registration error, for a clearer message.
func errAlreadyRegistered(err error) bool {
	var are prometheus.AlreadyRegisteredError
	return errors.As(err, &are)
}
