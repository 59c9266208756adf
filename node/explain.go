package node

// One-line, typed errors for a peer this node cannot reach (or can reach
// only through a relay too small for a tunnel): what was tried, each
// step's error, and what would fix it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrUnreachable is the errors.Is target of every *UnreachableError.
var ErrUnreachable = errors.New("peer unreachable")

// ErrRelayTooSmall is the errors.Is target of an *UnreachableError whose
// only connection is through a relay whose limits would cut a tunnel.
var ErrRelayTooSmall = errors.New("only a limited relay reaches the peer")

// MinRelayData is the data limit per relayed connection (each direction)
// at or above which a relay may carry a tunnel. Public relays allow 128 KiB
// and 2 minutes: enough to coordinate a hole punch, not to carry data.
const MinRelayData = 1 << 20

// Step is one thing tried to reach a peer.
type Step struct {
	Name string // "find peer", "direct dial", "relay", "hole punch"
	Err  string // "" when the step worked
}

// UnreachableError says that a peer could not be reached, what was tried
// and how to fix it, on one line.
type UnreachableError struct {
	Peer  peer.ID
	Steps []Step
	Fix   string
	// relayTooSmall marks a peer reached only through a limited relay.
	relayTooSmall bool
	cause         error // libp2p's error, for errors.Is (context.DeadlineExceeded, ...)
}

// Unwrap returns libp2p's own error.
func (e *UnreachableError) Unwrap() error { return e.cause }

func (e *UnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot reach peer %s: ", e.Peer)
	for i, s := range e.Steps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Name)
		b.WriteString(": ")
		if s.Err == "" {
			b.WriteString("ok")
		} else {
			b.WriteString(s.Err)
		}
	}
	if e.Fix != "" {
		b.WriteString(". Fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnreachable) (and ErrRelayTooSmall for a
// limited relay) true.
func (e *UnreachableError) Is(target error) bool {
	return target == ErrUnreachable || (e.relayTooSmall && target == ErrRelayTooSmall)
}

const fixText = "run a relay of your own that both peers know (relay_service = true with a raised [swarm.relay_limit], in [discovery] bootstrap or [swarm] static_relays), " +
	"or make one peer dialable: a port mapping on its router (nat_port_map), or its public address in [addresses] announce"

// oneLine squeezes a multi-line libp2p error onto one line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// explainConnect builds the error of a failed connect: find is the error
// of the lookup ("" if it worked or was not needed), dial that of
// host.Connect.
func (n *Node) explainConnect(p peer.ID, find, dial error) error {
	e := &UnreachableError{Peer: p, Fix: fixText, cause: dial}
	if find != nil {
		e.cause = find
		msg := find.Error()
		if errors.Is(find, context.DeadlineExceeded) {
			msg = "timed out looking it up in the DHT"
		} else if errors.Is(find, routing.ErrNotFound) {
			msg = "not found in the DHT"
			if n.amino == nil {
				msg += " (public_network is off: only this network's own DHT was asked)"
			}
		}
		e.Steps = append(e.Steps, Step{Name: "find peer", Err: oneLine(msg)})
		e.Fix = "check the peer ID and that the peer is running and connected to a bootstrap peer; then " + fixText
		return e
	}
	e.Steps = append(e.Steps, Step{Name: "find peer"})
	var direct, relayed []string
	var de *swarm.DialError
	if errors.As(dial, &de) {
		for _, te := range de.DialErrors {
			msg := oneLine(te.Address.String() + ": " + te.Cause.Error())
			if isCircuit(te.Address) {
				relayed = append(relayed, msg)
			} else {
				direct = append(direct, msg)
			}
		}
	}
	switch {
	case len(direct) > 0:
		e.Steps = append(e.Steps, Step{Name: "direct dial", Err: summarize(direct)})
	case dial != nil && len(relayed) == 0:
		e.Steps = append(e.Steps, Step{Name: "direct dial", Err: oneLine(dial.Error())})
	}
	if len(relayed) > 0 {
		e.Steps = append(e.Steps, Step{Name: "relay", Err: summarize(relayed)})
	} else {
		e.Steps = append(e.Steps, Step{Name: "relay", Err: "the peer announces no relay address (it holds no relay reservation)"})
	}
	e.Steps = append(e.Steps, n.holePunchStep(p))
	return e
}

func summarize(errs []string) string {
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Sprintf("%d addresses failed, first %s", len(errs), errs[0])
}

// holePunchStep reports the last hole punch with p.
func (n *Node) holePunchStep(p peer.ID) Step {
	s := Step{Name: "hole punch"}
	a, ok := n.status.lastHolePunch(p)
	switch {
	case !ok && !n.cfg.Swarm.HolePunching:
		s.Err = "off ([swarm] hole_punching = false)"
	case !ok:
		s.Err = "not tried (it starts on a relayed connection)"
	case a.Success:
		s.Err = ""
	case a.Error != "":
		s.Err = oneLine(a.Error)
		if n.symmetricNAT() {
			s.Err += " (this node's NAT is symmetric: hole punching cannot work here)"
		}
	default:
		s.Err = "failed"
	}
	return s
}

func (n *Node) symmetricNAT() bool {
	n.status.mu.Lock()
	defer n.status.mu.Unlock()
	for _, k := range n.status.natTypes {
		if k == "symmetric" {
			return true
		}
	}
	return false
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// RelayedOK says whether the connections to p can carry a tunnel: nil if
// one of them is direct, or relayed with no limit or a data limit of at
// least MinRelayData; otherwise an *UnreachableError (ErrRelayTooSmall)
// naming the relay's limits and the last hole punch.
func (n *Node) RelayedOK(p peer.ID) error {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return nil // not connected: the caller's dial says why
	}
	var limits []string
	for _, c := range conns {
		st := c.Stat()
		if !st.Limited {
			return nil
		}
		data, _ := st.Extra[circuitclient.StatLimitData].(uint64)
		dur, _ := st.Extra[circuitclient.StatLimitDuration].(time.Duration)
		if data == 0 || data >= MinRelayData {
			return nil // no data limit, or enough for a tunnel
		}
		relay := "?"
		if id, ok := circuitRelay(c.RemoteMultiaddr()); ok {
			relay = id.String()
		}
		limits = append(limits, fmt.Sprintf("only through relay %s, which cuts each connection after %d bytes and %v", relay, data, dur))
	}
	e := &UnreachableError{Peer: p, Fix: fixText, relayTooSmall: true}
	e.Steps = append(e.Steps, Step{Name: "find peer"})
	e.Steps = append(e.Steps, Step{Name: "direct dial", Err: "no direct connection (both peers are behind NAT)"})
	e.Steps = append(e.Steps, Step{Name: "relay", Err: summarize(limits)})
	e.Steps = append(e.Steps, n.holePunchStep(p))
	return e
}
