package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/warren-p2p/warren/config"
)

// resourceManager builds libp2p's resource manager from the config.
//
// libp2p's scaled defaults allow a few hundred streams per peer and per
// protocol, far below what a tunnel carries (the target is 10,000 concurrent
// tunnelled connections between one pair of peers, one stream each). So the
// stream limits of the system, transient, peer, protocol and protocol-peer
// scopes come from the config, and the memory of a connection may grow to the
// system's: yamux accounts 256 KiB of receive window per stream (accounted,
// not allocated), so 10,000 streams on one connection account 2.5 GiB.
// Limits of libp2p's own services (identify, relay, ...) keep their defaults.
func resourceManager(c config.ResourceManager) (network.ResourceManager, error) {
	if !c.Enabled {
		return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	}
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	mem := int64(c.MaxMemoryMB) << 20
	base := scaling.Scale(mem, c.MaxFileDescriptors)

	streams := func(total int) rcmgr.ResourceLimits {
		return rcmgr.ResourceLimits{
			Streams:         rcmgr.LimitVal(total),
			StreamsInbound:  rcmgr.LimitVal(total),
			StreamsOutbound: rcmgr.LimitVal(total),
			Memory:          rcmgr.LimitVal64(mem),
		}
	}
	sys := streams(c.MaxStreams)
	sys.Conns = rcmgr.LimitVal(c.MaxConns)
	sys.ConnsInbound = rcmgr.LimitVal(c.MaxConns)
	sys.ConnsOutbound = rcmgr.LimitVal(c.MaxConns)
	sys.FD = rcmgr.LimitVal(c.MaxFileDescriptors)
	peerLimits := streams(c.MaxStreamsPerPeer)
	partial := rcmgr.PartialLimitConfig{
		System:              sys,
		Transient:           streams(c.MaxStreamsPerPeer),
		PeerDefault:         peerLimits,
		ProtocolDefault:     streams(c.MaxStreams),
		ProtocolPeerDefault: peerLimits,
		Conn:                rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(mem)},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
