package node

// Reaching a peer for data (a tunnel's stream, direct messages): connect,
// give hole punching a chance to replace a relayed connection with a
// direct one, and refuse a relay whose limits would cut the data.

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DirectWait is how long a relayed connection is given for hole punching to
// add a direct one before Reach uses (or refuses) the relay: the setting
// tunnels.direct_wait, or 0 with swarm.hole_punching off (waiting for a hole
// punch that never comes is pointless).
func (n *Node) DirectWait() time.Duration {
	if !n.cfg.Swarm.HolePunching {
		return 0
	}
	return n.cfg.Tunnels.DirectWait.Std()
}

// Reach makes sure a data stream may be opened to p, connecting first (by
// ID if need be, see Connect). When the only connection is relayed
// (limited), it waits for hole punching to add a direct one, then checks
// the relay's limits with RelayedOK. A nil error means a stream opened with
// network.WithAllowLimitedConn carries the data on a direct connection or
// on a relay whose limits allow it; otherwise the error is an
// *UnreachableError (errors.Is ErrUnreachable, and ErrRelayTooSmall for a
// relay too small), or ctx's error.
//
// The wait lasts until the newest relayed connection is DirectWait old
// (DCUtR tries once per relayed connection, on its first seconds: a longer
// wait would only delay the caller), and at most half the time left before
// ctx's deadline, so that a stream can still be opened over the relay
// within it. Waiting costs one event-bus subscription per caller.
func (n *Node) Reach(ctx context.Context, p peer.ID) error {
	switch n.host.Network().Connectedness(p) {
	case network.Connected:
		return nil
	case network.Limited:
	default:
		if err := n.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			return err
		}
	}
	n.awaitDirect(ctx, p)
	if n.host.Network().Connectedness(p) != network.Limited {
		return nil // direct now (or gone: the caller's stream says so)
	}
	if err := n.RelayedOK(p); err != nil {
		return err
	}
	return ctx.Err()
}

// awaitDirect returns once p has a direct connection, its newest relayed
// connection is DirectWait old, half the time to ctx's deadline has passed,
// or ctx ends, whichever comes first.
func (n *Node) awaitDirect(ctx context.Context, p peer.ID) {
	wait := n.DirectWait()
	if wait <= 0 || n.host.Network().Connectedness(p) != network.Limited {
		return
	}
	var newest time.Time
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if st := c.Stat(); st.Limited && st.Opened.After(newest) {
			newest = st.Opened
		}
	}
	until := newest.Add(wait)
	if dl, ok := ctx.Deadline(); ok {
		if half := time.Now().Add(time.Until(dl) / 2); half.Before(until) {
			until = half
		}
	}
	left := time.Until(until)
	if left <= 0 {
		return
	}
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return
	}
	defer sub.Close()
	timer := time.NewTimer(left)
	defer timer.Stop()
	start := time.Now()
	for n.host.Network().Connectedness(p) == network.Limited { // checked after subscribing: no change is missed
		select {
		case <-sub.Out():
		case <-timer.C:
			n.log.Debug("no direct connection to the peer in time (tunnels.direct_wait)", "peer", p, "waited", time.Since(start))
			return
		case <-ctx.Done():
			return
		case <-n.ctx.Done():
			return
		}
	}
	n.log.Debug("direct connection to the peer", "peer", p, "after", time.Since(start))
}
