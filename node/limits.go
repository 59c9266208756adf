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
// Limits of libp2p's own services (identify, relay, ...) keep their defaults;
// those of warren's services come from services (see ServiceLimit).
func resourceManager(c config.ResourceManager, services []ServiceLimit) (network.ResourceManager, error) {
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
	if err := applyServiceLimits(&partial, base, services); err != nil {
		return nil, err
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

// ServiceLimit is the resource-manager limit of one of warren's services: a
// protocol whose stream handler (and stream opener) calls
// str.Scope().SetService(Name). libp2p then counts the service's streams and
// the memory reserved on them per peer and for all peers together, and
// refuses what goes over: SetService fails for a stream too many, and
// ReserveMemory for memory too much. Zero means libp2p's default.
type ServiceLimit struct {
	Name string
	// For all peers together.
	StreamsInbound, StreamsOutbound int
	Memory                          int64
	// For each peer.
	PeerStreamsInbound, PeerStreamsOutbound int
	PeerMemory                              int64
	// StreamMemory is the most one stream of the service may hold, when
	// that is more than libp2p's per-stream default (16 MiB); 0 keeps it.
	StreamMemory int64
}

// applyServiceLimits adds the limits of services to partial. A stream's own
// memory limit (libp2p's default 16 MiB) is raised to the largest
// StreamMemory of a service, so that one stream can hold what its service
// needs (a maximal message, for one).
func applyServiceLimits(partial *rcmgr.PartialLimitConfig, base rcmgr.ConcreteLimitConfig, services []ServiceLimit) error {
	if len(services) == 0 {
		return nil
	}
	partial.Service = make(map[string]rcmgr.ResourceLimits, len(services))
	partial.ServicePeer = make(map[string]rcmgr.ResourceLimits, len(services))
	streamMem := base.ToPartialLimitConfig().Stream.Memory
	for _, sl := range services {
		if sl.Name == "" {
			return fmt.Errorf("resource manager: service limit without a name")
		}
		if _, dup := partial.Service[sl.Name]; dup {
			return fmt.Errorf("resource manager: two limits for service %q", sl.Name)
		}
		if sl.StreamsInbound < 0 || sl.StreamsOutbound < 0 || sl.Memory < 0 ||
			sl.PeerStreamsInbound < 0 || sl.PeerStreamsOutbound < 0 || sl.PeerMemory < 0 || sl.StreamMemory < 0 {
			return fmt.Errorf("resource manager: service %q: negative limit in %+v", sl.Name, sl)
		}
		partial.Service[sl.Name] = serviceScope(sl.StreamsInbound, sl.StreamsOutbound, sl.Memory)
		partial.ServicePeer[sl.Name] = serviceScope(sl.PeerStreamsInbound, sl.PeerStreamsOutbound, sl.PeerMemory)
		if m := rcmgr.LimitVal64(sl.StreamMemory); streamMem != rcmgr.Unlimited64 && m > streamMem {
			streamMem = m
		}
	}
	partial.Stream.Memory = streamMem
	return nil
}

// serviceScope turns one scope's limits into rcmgr's; with both directions
// set, the total is their sum.
func serviceScope(in, out int, mem int64) rcmgr.ResourceLimits {
	l := rcmgr.ResourceLimits{
		StreamsInbound:  rcmgr.LimitVal(in),
		StreamsOutbound: rcmgr.LimitVal(out),
		Memory:          rcmgr.LimitVal64(mem),
	}
	if in > 0 && out > 0 {
		l.Streams = rcmgr.LimitVal(in + out)
	}
	return l
}
