package gossip

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/netname"
)

// Defaults. The queue sizes come from BenchmarkGossip50Nodes: 50 mocknet
// nodes in a connected random graph of average degree 9, every node
// subscribed, 1,000 signed 256-byte messages published open-loop from
// rotating publishers (49,000 deliveries), on the shared 2-core machine:
//
//	                       rate   delivered   dropped copies   p50      p99
//	pubsub defaults (32)   1000   91.5 %      ~190,000         1.7 s    3.9 s
//	this package           1000   100 %       0                1.1-2.5 s 3-6.7 s
//	pubsub defaults (32)    100   99.83 %     5,439            9 ms     314 ms
//	this package            100   100 %       0                5 ms     25 ms
//
// At 1,000 msgs/s the simulation is CPU-bound, not queue-bound: one round
// costs ~8.6 CPU-seconds (a third of it Ed25519 verification, one per
// delivery), so 50 nodes sharing 2 cores fall behind, and the raised
// queues hold the backlog where pubsub's defaults drop it. With a core per
// node, as in a real network, that work is ~0.2 ms per message per node.
//
//   - Per-peer outbound queue: 32 → 2048 RPCs, so a burst to a slow peer is
//     delayed rather than skipped.
//   - Validation queue: 32 → 4096 messages; every received message waits
//     here for its signature check, the most expensive step.
//   - Subscription buffer: 32 → 1024 messages per Subscription (and pubsub's
//     channel to it, drained by the Subscription's pump, holds 1024 more).
//
// Memory: queues hold pointers to messages (shared between peers' queues),
// so the worst case is one slow peer pinning OutboundQueueSize distinct
// messages: 2048 × MaxMessageSize. For topics of large messages, lower
// OutboundQueueSize (or MaxMessageSize).
const (
	DefaultMaxMessageSize     = 1 << 20
	DefaultPublishTimeout     = 10 * time.Second
	DefaultOutboundQueueSize  = 2048
	DefaultValidateQueueSize  = 4096
	DefaultSubscriptionBuffer = 1024
	DefaultHeartbeatInterval  = time.Second

	// DefaultMaxTopicsPerRPC bounds the subscription changes one RPC may
	// carry. A peer's first RPC (its hello) lists every topic it is in, so
	// this is also the most topics a node may join (Join refuses more):
	// every node of a network must agree on it.
	DefaultMaxTopicsPerRPC = 100
	// DefaultMaxTopicsPerPeer bounds the topics one peer may be subscribed
	// to at once, as this node tracks them.
	DefaultMaxTopicsPerPeer = 256
	// MaxMaxTopics is the largest MaxTopicsPerRPC or MaxTopicsPerPeer
	// accepted.
	MaxMaxTopics = 10000

	// MaxMaxMessageSize is the largest MaxMessageSize accepted (16 MiB),
	// matching the node's configuration limit.
	MaxMaxMessageSize = 16 << 20

	// envelopeOverhead is added to MaxMessageSize to get pubsub's wire
	// limit: a message travels inside an RPC together with its topic name,
	// author ID, sequence number, signature and public key. 8 KiB covers an
	// RSA-4096 key with room to spare.
	envelopeOverhead = 8 << 10
)

// Options configure a Service.
type Options struct {
	// Network names the warren network; topics and protocol IDs are
	// namespaced by it so separate networks never mix. The rule is
	// config's network rule (internal/netname); default "warren", as
	// config's and msg's.
	Network string

	// MaxMessageSize is the largest payload Publish accepts, in bytes.
	// Default 1 MiB, at most 16 MiB. All nodes of a network must agree.
	MaxMessageSize int

	// Discovery, if set, is used to advertise joined topics and find their
	// members (the node passes routing.NewRoutingDiscovery(dht)). Nil means
	// topics only reach peers this host is already connected to.
	Discovery discovery.Discovery

	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger

	// Registerer receives the gossip metrics; nil registers none.
	Registerer prometheus.Registerer

	// PublishTimeout bounds how long Publish waits for a first subscribed
	// peer when the topic has none and the caller's ctx has no deadline (a
	// ctx deadline replaces it, longer or shorter). Default 10s.
	PublishTimeout time.Duration

	// OutboundQueueSize is the number of RPCs queued per peer before pubsub
	// drops (and this package counts) further ones. Default 2048.
	OutboundQueueSize int

	// ValidateQueueSize is the number of received messages waiting for
	// signature and validator checks before new ones are dropped (and
	// counted). Default 4096.
	ValidateQueueSize int

	// DisableFloodPublish turns off flood publishing of this node's own
	// messages. With it on (the default) a published message goes to every
	// peer known to be in the topic rather than only to mesh peers, so it
	// is not lost when the mesh is still empty (e.g. right after a peer
	// subscribed). Turn it off only for very large, well-meshed topics.
	DisableFloodPublish bool

	// HeartbeatInterval is GossipSub's heartbeat: how often meshes are
	// repaired and IHAVE gossip (which recovers messages a mesh missed) is
	// sent. The message-cache windows are scaled to keep their length in
	// time (3 s gossiped, 5 s kept). Default 1s, pubsub's own.
	HeartbeatInterval time.Duration

	// MaxTopicsPerRPC is the most subscription changes one RPC from a peer
	// may carry; pubsub drops a whole RPC over it (its messages and control
	// too) and this package counts it. It is also the most topics this node
	// may join, since its hello lists them all in one RPC. Default 100, at
	// most MaxMaxTopics. All nodes of a network must agree.
	MaxTopicsPerRPC int

	// MaxTopicsPerPeer is the most topics of this network one peer may be
	// subscribed to at once; further subscriptions from it are ignored (and
	// counted) until it unsubscribes or disconnects. Default 256, at most
	// MaxMaxTopics.
	MaxTopicsPerPeer int
}

// SubscribeOptions configure a Subscription.
type SubscribeOptions struct {
	// Buffer is the number of messages held for a reader that is behind;
	// past it messages are dropped and counted (Subscription.Dropped).
	// Default 1024.
	Buffer int
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Network == "" {
		o.Network = netname.Default
	}
	if err := netname.Check(o.Network); err != nil {
		return o, fmt.Errorf("Options.Network: %w", err)
	}
	switch {
	case o.MaxMessageSize == 0:
		o.MaxMessageSize = DefaultMaxMessageSize
	case o.MaxMessageSize < 0 || o.MaxMessageSize > MaxMaxMessageSize:
		return o, fmt.Errorf("Options.MaxMessageSize is %d; expected 1 to %d bytes (0 for the default %d)",
			o.MaxMessageSize, MaxMaxMessageSize, DefaultMaxMessageSize)
	}
	switch {
	case o.PublishTimeout == 0:
		o.PublishTimeout = DefaultPublishTimeout
	case o.PublishTimeout < 0:
		return o, fmt.Errorf("Options.PublishTimeout is %s; expected a duration > 0 (0 for the default %s)",
			o.PublishTimeout, DefaultPublishTimeout)
	}
	switch {
	case o.HeartbeatInterval == 0:
		o.HeartbeatInterval = DefaultHeartbeatInterval
	case o.HeartbeatInterval < 50*time.Millisecond || o.HeartbeatInterval > time.Minute:
		return o, fmt.Errorf("Options.HeartbeatInterval is %s; expected 50ms to 1m (0 for the default %s)",
			o.HeartbeatInterval, DefaultHeartbeatInterval)
	}
	var err error
	if o.OutboundQueueSize, err = positiveOr("Options.OutboundQueueSize", o.OutboundQueueSize, DefaultOutboundQueueSize); err != nil {
		return o, err
	}
	if o.ValidateQueueSize, err = positiveOr("Options.ValidateQueueSize", o.ValidateQueueSize, DefaultValidateQueueSize); err != nil {
		return o, err
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"Options.MaxTopicsPerRPC", &o.MaxTopicsPerRPC, DefaultMaxTopicsPerRPC},
		{"Options.MaxTopicsPerPeer", &o.MaxTopicsPerPeer, DefaultMaxTopicsPerPeer},
	} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0 || *f.v > MaxMaxTopics:
			return o, fmt.Errorf("%s is %d; expected 1 to %d (0 for the default %d)", f.name, *f.v, MaxMaxTopics, f.def)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

func (o SubscribeOptions) withDefaults() (SubscribeOptions, error) {
	var err error
	o.Buffer, err = positiveOr("SubscribeOptions.Buffer", o.Buffer, DefaultSubscriptionBuffer)
	return o, err
}

func positiveOr(field string, v, def int) (int, error) {
	switch {
	case v == 0:
		return def, nil
	case v < 0:
		return 0, fmt.Errorf("%s is %d; expected a number > 0 (0 for the default %d)", field, v, def)
	}
	return v, nil
}

// checkName accepts 1..max letters, digits, '.', '_' or '-', starting with
// a letter or digit: safe inside a topic string, a protocol ID, a DHT key
// and a Prometheus label.
func checkName(what, s string, max int) error {
	if validName(s, max) {
		return nil
	}
	expected := fmt.Sprintf("1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", max)
	if s == "" || len(s) > max {
		return fmt.Errorf("%s %q has %d characters; expected %s", what, s, len(s), expected)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		return fmt.Errorf("%s %q: %q at position %d is not allowed; expected %s", what, s, c, i+1, expected)
	}
	return nil
}

// validName is checkName's test without the error: it does not allocate,
// so the subscription filter can run it on every topic a peer announces.
func validName(s string, max int) bool { return netname.ValidUpTo(s, max) }
