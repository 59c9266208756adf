package warren

import (
	"context"
	"path/filepath"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"

	"github.com/warren-p2p/warren/msg"
)

// msgOptions are the message service's options from the config (without
// logger and registry). New also derives the service's resource-manager
// limits from them.
func msgOptions(cfg config.Config) msg.Options {
	m := cfg.Messages
	return msg.Options{
		Network:               cfg.Network,
		MaxMessageSize:        m.MaxMessageSize,
		SendQueue:             m.SendQueue,
		RequestTimeout:        m.RequestTimeout.Std(),
		MaxConcurrentHandlers: m.MaxHandlers,
		MaxHandlersPerPeer:    min(m.MaxHandlersPerPeer, m.MaxHandlers),
		ReplyTimeout:          m.ReplyTimeout.Std(),
		MaxStreamsPerPeer:     m.MaxStreamsPerPeer,
		SubscribeMaxBytes:     m.SubscriptionBytes,
	}
}

// serviceLimits are the resource-manager limits of warren's own services.
// msg's come from its options: a few streams and a few maximal frames per
// peer, and one stream may hold a maximal frame. Tunnels need one stream per
// tunnelled connection (10,000 per peer is the target), and yamux accounts
// 256 KiB of window to each, so the tunnel service may use what the system
// and peer scopes allow. Gossip keeps one stream per peer each way
// (gossip.ServiceStreamsPerPeer leaves room for a replaced one), so all
// peers together need at most that many per connection. Its memory limits
// stay libp2p's defaults: pubsub reserves no memory on its streams, so
// they would bound nothing (see docs/security.md).
func serviceLimits(cfg config.Config) ([]node.ServiceLimit, error) {
	l, err := msg.ResourceLimits(msgOptions(cfg))
	if err != nil {
		return nil, err // it says "msg: ..." or "gossip: ..." already: no second prefix
	}
	rm := cfg.Swarm.ResourceManager
	mem := int64(rm.MaxMemoryMB) << 20
	gossipStreams := min(rm.MaxStreams, gossip.ServiceStreamsPerPeer*rm.MaxConns)
	return []node.ServiceLimit{{
		Name:           msg.ServiceName,
		StreamsInbound: l.StreamsInbound, StreamsOutbound: l.StreamsOutbound, Memory: l.Memory,
		PeerStreamsInbound: l.PeerStreamsInbound, PeerStreamsOutbound: l.PeerStreamsOutbound, PeerMemory: l.PeerMemory,
		StreamMemory: l.PeerMemory,
	}, {
		Name:           tunnel.ServiceName,
		StreamsInbound: rm.MaxStreams, StreamsOutbound: rm.MaxStreams, Memory: mem,
		PeerStreamsInbound: min(tunnel.ServiceStreamsPerPeer, rm.MaxStreamsPerPeer), PeerStreamsOutbound: min(tunnel.ServiceStreamsPerPeer, rm.MaxStreamsPerPeer),
		PeerMemory: mem,
	}, {
		Name:           gossip.ServiceName,
		StreamsInbound: gossipStreams, StreamsOutbound: gossipStreams,
		PeerStreamsInbound: gossip.ServiceStreamsPerPeer, PeerStreamsOutbound: gossip.ServiceStreamsPerPeer,
	}}, nil
}

// startServices starts the capabilities built on the node; each is closed,
// in reverse order, by Node.Close.
func (n *Node) startServices(ctx context.Context, opts Options) error {
	cfg := opts.Config
	mo := msgOptions(cfg)
	mo.Logger = n.log.With("component", "msg")
	mo.Registerer = n.metrics
	// As tunnels: node.Reach finds the peer by ID, waits for a hole punch
	// (at most half of ReachTimeout: room for tunnels.direct_wait) and
	// refuses a relay too small to carry messages.
	mo.Reach = n.node.Reach
	mo.ReachTimeout = max(msg.DefaultReachTimeout, 2*n.node.DirectWait())
	ms, err := msg.New(ctx, n.Host(), mo)
	if err != nil {
		return err // it says "msg: ..." or "gossip: ..." already: no second prefix
	}
	n.msg = ms
	n.closers = append(n.closers, ms.Close)

	// Topic rendezvous on warren's DHT and, with public_network, the Amino DHT.
	disc := n.node.Discovery()
	gs, err := gossip.New(ctx, n.Host(), gossip.Options{
		Network:        cfg.Network,
		MaxMessageSize: cfg.Gossip.MaxMessageSize,
		PublishTimeout: cfg.Gossip.PublishTimeout.Std(),
		Discovery:      disc,
		Logger:         n.log.With("component", "gossip"),
		Registerer:     n.metrics,

		// Bounds on what peers' subscriptions may cost.
		MaxTopicsPerRPC:  cfg.Gossip.MaxTopicsPerRPC,
		MaxTopicsPerPeer: cfg.Gossip.MaxTopicsPerPeer,
	})
	if err != nil {
		return err // it says "msg: ..." or "gossip: ..." already: no second prefix
	}
	n.gossip = gs
	n.closers = append(n.closers, gs.Close)

	statePath := ""
	if opts.RepoDir != "" {
		statePath = filepath.Join(opts.RepoDir, config.TunnelsFile)
	}
	tm, err := tunnel.NewManager(ctx, n.Host(), tunnel.Options{
		StatePath:      statePath,
		RepoDir:        opts.RepoDir,
		MaxConns:       cfg.Tunnels.MaxConnsPerTunnel,
		DialTimeout:    cfg.Tunnels.DialTimeout.Std(),
		UDPIdleTimeout: cfg.Tunnels.UDPIdleTimeout.Std(),
		// node.Reach finds the peer by ID, waits for a hole punch and
		// refuses a relay too small for a tunnel; its errors say what was
		// tried and the fix.
		Reach:      n.node.Reach,
		Logger:     n.log.With("component", "tunnel"),
		Registerer: n.metrics,
	})
	if err != nil {
		return err // it says "tunnel: ..." already
	}
	n.tunnels = tm
	n.closers = append(n.closers, tm.Close)
	// A tunnel that fails to come back stays listed with its error and is
	// retried with backoff; the manager logs its error once.
	tm.Restore(ctx)
	return nil
}
