package gossip

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ServiceName is the resource-manager service of the gossip streams: every
// GossipSub stream, inbound and outbound, joins it before pubsub uses it, so
// libp2p counts them per peer and for all peers together and refuses those
// over the limits the node gives the service (see ServiceStreamsPerPeer).
const ServiceName = "warren.gossip"

// ServiceStreamsPerPeer is how many gossip streams each way the resource
// manager should allow one peer in the gossip service (ServiceName). pubsub
// keeps one stream per direction per peer (whichever protocol version was
// negotiated) and replaces it when the peer opens another; the headroom
// covers a replaced stream still being torn down. The root package wires it
// into the node's resource manager.
const ServiceStreamsPerPeer = 4

// Directions, as the direction label of warren_gossip_refused_streams_total.
const (
	DirInbound  = "inbound"
	DirOutbound = "outbound"
)

// scopedHost is the host pubsub sees. pubsub opens its streams with
// NewStream and registers its handlers with SetStreamHandler (or
// SetStreamHandlerMatch, with a protocol match function); everything else it
// uses (ID, Peerstore, Network, EventBus, ConnManager, Connect) passes
// through. Both paths put the stream in the gossip service first, and reset
// a stream the resource manager refuses.
type scopedHost struct {
	host.Host
	s *Service
}

func (h scopedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.s.scopedHandler(handler))
}

func (h scopedHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.s.scopedHandler(handler))
}

func (h scopedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	str, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	if err := str.Scope().SetService(ServiceName); err != nil {
		_ = str.Reset()
		h.s.streamRefused(DirOutbound, p, err)
		return nil, fmt.Errorf("gossip: open stream to %s: resource manager (service %s): %w", p, ServiceName, err)
	}
	return str, nil
}

// scopedHandler wraps pubsub's stream handler: the stream joins the gossip
// service, or is reset without pubsub seeing it.
func (s *Service) scopedHandler(handler network.StreamHandler) network.StreamHandler {
	return func(str network.Stream) {
		if err := str.Scope().SetService(ServiceName); err != nil {
			_ = str.Reset()
			s.streamRefused(DirInbound, str.Conn().RemotePeer(), err)
			return
		}
		handler(str)
	}
}

func (s *Service) streamRefused(dir string, p peer.ID, err error) {
	// The metric first: whoever sees RefusedStreams move then finds the
	// metric moved too.
	if dir == DirInbound {
		s.m.refusedIn.Inc()
		s.refusedIn.Add(1)
	} else {
		s.m.refusedOut.Inc()
		s.refusedOut.Add(1)
	}
	s.rlog.Warn("gossip: stream refused by the resource manager", "direction", dir, "peer", p, "err", err)
}

// RefusedStreams counts the gossip streams the resource manager refused
// (the gossip service's limits, or a broader scope's), each way; each was
// reset before pubsub used it.
func (s *Service) RefusedStreams() (inbound, outbound uint64) {
	return s.refusedIn.Load(), s.refusedOut.Load()
}
