package warren

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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
		return nil, fmt.Errorf("start messages: %w", err)
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
	mo.Registerer = n.Metrics
	ms, err := msg.New(n.Host(), mo)
	if err != nil {
		return fmt.Errorf("start messages: %w", err)
	}
	n.Msg = ms
	n.closers = append(n.closers, ms.Close)

	// Topic rendezvous on warren's DHT and, with public_network, the Amino DHT.
	disc := n.Node.Discovery()
	// The node runs until Close, whatever becomes of the caller's ctx.
	gs, err := gossip.New(context.WithoutCancel(ctx), n.Host(), gossip.Options{
		Network:        cfg.Network,
		MaxMessageSize: cfg.Gossip.MaxMessageSize,
		PublishTimeout: cfg.Gossip.PublishTimeout.Std(),
		Discovery:      disc,
		Logger:         n.log.With("component", "gossip"),
		Registerer:     n.Metrics,

		// Bounds on what peers' subscriptions may cost.
		MaxTopicsPerRPC:  cfg.Gossip.MaxTopicsPerRPC,
		MaxTopicsPerPeer: cfg.Gossip.MaxTopicsPerPeer,
	})
	if err != nil {
		return fmt.Errorf("start gossip: %w", err)
	}
	n.Gossip = gs
	n.closers = append(n.closers, gs.Close)

	statePath := ""
	if opts.RepoDir != "" {
		statePath = filepath.Join(opts.RepoDir, config.TunnelsFile)
	}
	var directWait time.Duration // waiting for a hole punch that never comes is pointless
	if cfg.Swarm.HolePunching {
		directWait = cfg.Tunnels.DirectWait.Std()
	}
	tm, err := tunnel.NewManager(n.Host(), tunnel.Options{
		StatePath:      statePath,
		RepoDir:        opts.RepoDir,
		MaxConns:       cfg.Tunnels.MaxConnsPerTunnel,
		DialTimeout:    cfg.Tunnels.DialTimeout.Std(),
		DirectWait:     directWait,
		UDPIdleTimeout: cfg.Tunnels.UDPIdleTimeout.Std(),
		// node.Connect finds the peer by ID and, when it fails, says what
		// was tried; RelayedOK refuses a relay too small for a tunnel.
		Connect: func(ctx context.Context, p peer.ID) error {
			_, err := n.Node.Connect(ctx, p.String())
			return err
		},
		RelayedOK:  n.Node.RelayedOK,
		Logger:     n.log.With("component", "tunnel"),
		Registerer: n.Metrics,
	})
	if err != nil {
		return fmt.Errorf("start tunnels: %w", err)
	}
	n.Tunnels = tm
	n.closers = append(n.closers, tm.Close)
	// A tunnel that fails to come back stays listed with its error.
	for _, t := range tm.Restore(ctx) {
		if t.Error != "" {
			n.log.Warn("tunnel not restored", "protocol", t.Protocol, "listen", t.ListenAddress, "target", t.TargetAddress, "err", t.Error)
		}
	}
	return nil
}
