package gossip

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// tracer turns pubsub's raw trace events into per-topic counts. pubsub calls
// it from its event loop and from per-peer writer goroutines, so it must
// not block and must not call back into pubsub.
type tracer struct {
	s *Service
}

var _ pubsub.RawTracer = tracer{}

// DropRPC: an outbound RPC did not fit in a peer's queue (or the peer had
// none, or it was oversized). Each message it carried is one lost copy.
func (t tracer) DropRPC(rpc *pubsub.RPC, _ peer.ID) {
	msgs := rpc.GetPublish()
	if len(msgs) == 0 {
		t.s.controlDropped()
		return
	}
	for _, m := range msgs {
		t.s.statsFor(m.GetTopic()).addDropped(dropOutbound)
	}
}

// UndeliverableMessage: pubsub's channel to one local subscription was full.
func (t tracer) UndeliverableMessage(msg *pubsub.Message) {
	t.s.statsFor(msg.GetTopic()).addDropped(dropSubscriberSlow)
}

// RejectMessage: validation refused or could not take the message.
func (t tracer) RejectMessage(msg *pubsub.Message, reason string) {
	st := t.s.statsFor(msg.GetTopic())
	switch reason {
	case pubsub.RejectValidationQueueFull:
		st.addDropped(dropValidationQueue)
	case pubsub.RejectValidationThrottled:
		st.addDropped(dropValidationThrottled)
	case pubsub.RejectValidationFailed:
		st.addRejected(rejectValidator)
	case pubsub.RejectValidationIgnored:
		st.addRejected(ignoreValidator)
	case pubsub.RejectInvalidSignature, pubsub.RejectMissingSignature, pubsub.RejectUnexpectedSignature:
		st.addRejected(rejectSignature)
	default:
		st.addRejected(rejectPolicy)
	}
}

// DeliverMessage: a message passed validation and was handed to local
// subscriptions. Local publishes are counted by Publish instead.
func (t tracer) DeliverMessage(msg *pubsub.Message) {
	if msg.ReceivedFrom == t.s.host.ID() {
		return
	}
	t.s.statsFor(msg.GetTopic()).addReceived()
}

// Graft, Prune and OnClosedOutboundStream (a peer gone: it leaves every
// mesh without a Prune event) keep each topic's mesh membership. The
// Service's notifiee also removes a peer from every mesh when it
// disconnects: pubsub handles a GRAFT even from an RPC it reads after the
// peer is gone, and would never send its Prune.
func (t tracer) Graft(p peer.ID, topic string) {
	st := t.s.statsFor(topic)
	st.graft(p)
	// The swarm marks a peer disconnected before it runs the notifiee, so
	// a graft that lost the race with it is undone here.
	if !connected(t.s.host.Network(), p) {
		st.prune(p)
	}
}
func (t tracer) Prune(p peer.ID, topic string) { t.s.statsFor(topic).prune(p) }
func (t tracer) OnClosedOutboundStream(p peer.ID) {
	t.s.statsMu.RLock()
	defer t.s.statsMu.RUnlock()
	for _, st := range t.s.stats {
		st.prune(p)
	}
}

func (tracer) Join(string)                                          {}
func (tracer) Leave(string)                                         {}
func (tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (tracer) ValidateMessage(*pubsub.Message)                      {}
func (tracer) DuplicateMessage(*pubsub.Message)                     {}
func (tracer) ThrottlePeer(peer.ID)                                 {}
func (tracer) RecvRPC(*pubsub.RPC)                                  {}
func (tracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
