package node

// Why this node can or cannot be reached: reachability and how it was
// learnt, observed and announced addresses, port mapping, relay
// reservations, hole punches, and how each peer is connected.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/promreg"
)

// Bounds of what the status keeps; every one is fed by remote peers.
const (
	maxObservedAddrs   = 16  // distinct addresses peers said they see us on
	maxRecentPunches   = 16  // hole-punch attempts kept for the status
	maxPunchPeers      = 256 // peers whose last hole-punch outcome is kept
	maxTrackedRelays   = 32  // relays whose reservation expiry is kept
	relayLookupTimeout = 10 * time.Second
	// autorelay refreshes a reservation this long before it expires.
	relayRefreshSlack = 2 * time.Minute
)

// Status is why this node can or cannot be reached.
type Status struct {
	PublicNetwork      bool
	Reachability       string // "public", "private" or "unknown"
	ReachabilitySource string // "autonat", "config" or "none"
	// NATTypes maps "tcp"/"udp" to "cone" (endpoint-independent: hole
	// punching can work) or "symmetric" (endpoint-dependent: it cannot),
	// as AutoNAT learnt them; empty until it knows.
	NATTypes map[string]string
	// ListenAddrs are the addresses the host listens on, AnnouncedAddrs the
	// ones it announces (with relay circuits), ObservedAddrs what peers said
	// they see it on (at most 16, sorted by their text).
	ListenAddrs    []ma.Multiaddr
	AnnouncedAddrs []ma.Multiaddr
	ObservedAddrs  []ma.Multiaddr
	PortMapping    PortMapping
	Relays         []RelayReservation
	HolePunch      HolePunchStats
	Peers          []PeerInfo
}

// PortMapping is the outcome of UPnP/NAT-PMP port mapping.
type PortMapping struct {
	Enabled bool
	State   string         // "off", "searching", "mapped" or "failed"
	Mapped  []ma.Multiaddr // the gateway's external addresses, sorted by their text
	Error   string
}

// RelayReservation is one reservation this node holds on a relay.
type RelayReservation struct {
	Relay   peer.ID
	Addrs   []ma.Multiaddr // this node's circuit addresses through Relay
	Expires time.Time      // zero if unknown
}

// HolePunchStats counts DCUtR hole punches since the node started.
type HolePunchStats struct {
	Attempts, Successes, Failures int
	Recent                        []HolePunchAttempt // newest first
}

// HolePunchAttempt is the outcome of one hole punch with a peer.
type HolePunchAttempt struct {
	Peer     peer.ID
	Time     time.Time
	Success  bool
	Error    string
	Duration time.Duration
}

// statusTracker keeps what the status needs from libp2p's events and the
// hole-punch tracer. It is made before the host (the tracer is a host
// option) and started once the host exists.
type statusTracker struct {
	bw       *peerBytes
	punches  *prometheus.CounterVec
	natmgr   basichost.NATManager // nil when nat_port_map is off
	natMu    sync.Mutex
	started  time.Time
	natStart time.Time

	mu          sync.Mutex
	reach       network.Reachability
	reachSource string
	natTypes    map[string]string
	observed    map[string]observedAddr // by the address's text
	relays      map[peer.ID]relayExpiry
	hp          HolePunchStats
	lastPunch   map[peer.ID]HolePunchAttempt
}

// observedAddr is an address a peer said it sees this node on, and when
// it was last said.
type observedAddr struct {
	addr ma.Multiaddr
	seen time.Time
}

type relayExpiry struct {
	expires time.Time
	ttl     time.Duration
}

func newStatusTracker(reg prometheus.Registerer) (*statusTracker, error) {
	t := &statusTracker{
		bw: newPeerBytes(),
		punches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_holepunch_total",
			Help: "DCUtR hole-punch attempts by outcome (success, failure).",
		}, []string{"outcome"}),
		started:     time.Now(),
		reachSource: "none",
		natTypes:    map[string]string{},
		observed:    map[string]observedAddr{},
		relays:      map[peer.ID]relayExpiry{},
		lastPunch:   map[peer.ID]HolePunchAttempt{},
	}
	if reg != nil {
		if err := promreg.Register(reg, &t.punches); err != nil {
			return nil, fmt.Errorf("register hole-punch metrics: %w", err)
		}
	}
	return t, nil
}

// newNATManager is the NAT manager constructor given to libp2p, so that
// the status can ask it what it mapped.
func (t *statusTracker) newNATManager(n network.Network) basichost.NATManager {
	m := basichost.NewNATManager(n)
	t.natMu.Lock()
	t.natmgr, t.natStart = m, time.Now()
	t.natMu.Unlock()
	return m
}

// Trace is the hole-punch event tracer.
func (t *statusTracker) Trace(evt *holepunch.Event) {
	var a HolePunchAttempt
	switch e := evt.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		a = HolePunchAttempt{Success: e.Success, Error: e.Error, Duration: e.EllapsedTime}
	case *holepunch.ProtocolErrorEvt:
		a = HolePunchAttempt{Error: "protocol: " + e.Error}
	default:
		return
	}
	a.Peer, a.Time = evt.Remote, time.Unix(0, evt.Timestamp)
	outcome := "failure"
	if a.Success {
		outcome = "success"
	}
	t.punches.WithLabelValues(outcome).Inc()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hp.Attempts++
	if a.Success {
		t.hp.Successes++
	} else {
		t.hp.Failures++
	}
	t.hp.Recent = append([]HolePunchAttempt{a}, t.hp.Recent...)
	if len(t.hp.Recent) > maxRecentPunches {
		t.hp.Recent = t.hp.Recent[:maxRecentPunches]
	}
	if _, ok := t.lastPunch[a.Peer]; !ok && len(t.lastPunch) >= maxPunchPeers {
		evictOldest(t.lastPunch, func(v HolePunchAttempt) time.Time { return v.Time })
	}
	t.lastPunch[a.Peer] = a
}

// lastHolePunch returns the last hole-punch outcome with a peer.
func (t *statusTracker) lastHolePunch(p peer.ID) (HolePunchAttempt, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.lastPunch[p]
	return a, ok
}

func evictOldest[K comparable, V any](m map[K]V, at func(V) time.Time) {
	var oldest K
	var when time.Time
	first := true
	for k, v := range m {
		if first || at(v).Before(when) {
			oldest, when, first = k, at(v), false
		}
	}
	if !first {
		delete(m, oldest)
	}
}

// run follows libp2p's events until ctx ends. forced is the configured
// reachability ("public"/"private") or "".
func (t *statusTracker) run(ctx context.Context, h host.Host, forced string, ready func()) error {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtNATDeviceTypeChanged),
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtAutoRelayAddrsUpdated),
	})
	if err != nil {
		ready()
		return fmt.Errorf("status: subscribe to libp2p events: %w", err)
	}
	defer sub.Close()
	if forced != "" {
		t.mu.Lock()
		t.reachSource = "config"
		t.reach = network.ReachabilityPrivate
		if forced == "public" {
			t.reach = network.ReachabilityPublic
		}
		t.mu.Unlock()
	}
	ready()
	trim := time.NewTicker(10 * time.Minute)
	defer trim.Stop()
	relays := time.NewTicker(2 * time.Second)
	defer relays.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-relays.C:
			t.learnRelays(ctx, h)
		case <-trim.C:
			// The byte counts of peers gone and idle for ten minutes are
			// dropped, so that the table is bounded by the peers of the
			// last ten minutes.
			t.bw.trim(time.Now().Add(-10*time.Minute), func(p peer.ID) bool {
				return h.Network().Connectedness(p) == network.Connected
			})
		case e, ok := <-sub.Out():
			if !ok {
				return nil
			}
			t.handle(ctx, h, forced, e)
		}
	}
}

func (t *statusTracker) handle(ctx context.Context, h host.Host, forced string, e any) {
	switch e := e.(type) {
	case event.EvtLocalReachabilityChanged:
		if forced != "" {
			return
		}
		t.mu.Lock()
		t.reach = e.Reachability
		t.reachSource = "autonat"
		if e.Reachability == network.ReachabilityUnknown {
			t.reachSource = "none"
		}
		t.mu.Unlock()
	case event.EvtNATDeviceTypeChanged:
		proto := "udp"
		if e.TransportProtocol == network.NATTransportTCP {
			proto = "tcp"
		}
		kind := "unknown"
		switch e.NatDeviceType {
		case network.NATDeviceTypeEndpointIndependent:
			kind = "cone"
		case network.NATDeviceTypeEndpointDependent:
			kind = "symmetric"
		}
		t.mu.Lock()
		t.natTypes[proto] = kind
		t.mu.Unlock()
	case event.EvtPeerIdentificationCompleted:
		if e.ObservedAddr == nil {
			return
		}
		s := e.ObservedAddr.String()
		t.mu.Lock()
		if _, ok := t.observed[s]; !ok && len(t.observed) >= maxObservedAddrs {
			evictOldest(t.observed, func(v observedAddr) time.Time { return v.seen })
		}
		t.observed[s] = observedAddr{addr: e.ObservedAddr, seen: time.Now()}
		t.mu.Unlock()
	case event.EvtAutoRelayAddrsUpdated:
		t.learnRelays(ctx, h)
	}
}

// autorelayTag is the connection-manager tag autorelay protects the
// connection to each relay it holds a reservation on with.
const autorelayTag = "autorelay"

// reservedRelays lists the relays autorelay holds a reservation on.
func reservedRelays(h host.Host) []peer.ID {
	var out []peer.ID
	for _, p := range h.Network().Peers() {
		if h.ConnManager().IsProtected(p, autorelayTag) {
			out = append(out, p)
		}
	}
	return out
}

// learnRelays finds the expiry of reservations on relays not seen before.
// autorelay keeps its reservations to itself, so the node asks the relay
// once: a reservation request from a peer that holds one refreshes it and
// answers its expiry, without taking a second slot.
func (t *statusTracker) learnRelays(ctx context.Context, h host.Host) {
	current := map[peer.ID]bool{}
	for _, id := range reservedRelays(h) {
		current[id] = true
	}
	t.mu.Lock()
	for id := range t.relays {
		if !current[id] {
			delete(t.relays, id)
		}
	}
	var todo []peer.ID
	for id := range current {
		if _, ok := t.relays[id]; !ok && len(t.relays)+len(todo) < maxTrackedRelays {
			todo = append(todo, id)
		}
	}
	t.mu.Unlock()
	for _, id := range todo {
		rctx, cancel := context.WithTimeout(ctx, relayLookupTimeout)
		start := time.Now()
		rsvp, err := circuitclient.Reserve(rctx, h, peer.AddrInfo{ID: id})
		cancel()
		re := relayExpiry{}
		if err == nil {
			re = relayExpiry{expires: rsvp.Expiration, ttl: rsvp.Expiration.Sub(start)}
		}
		// On an error the status shows the reservation with an unknown
		// expiry; it is not asked again while it lasts.
		t.mu.Lock()
		t.relays[id] = re
		t.mu.Unlock()
	}
}

// circuitRelay returns the relay of a circuit address
// (/.../p2p/<relay>/p2p-circuit).
func circuitRelay(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	var circuit bool
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if !circuit {
				if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
					relay = id
				}
			}
		case ma.P_CIRCUIT:
			circuit = true
		}
	}
	return relay, circuit && relay != ""
}

// relayExpires is the expiry of the reservation on a relay: the one the
// relay answered, moved on by its lifetime each time autorelay's refresh
// was due while the relay stayed among the node's addresses.
func (t *statusTracker) relayExpires(id peer.ID, now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.relays[id]
	if !ok {
		return time.Time{}
	}
	if !r.expires.IsZero() && r.ttl > relayRefreshSlack {
		for now.Add(relayRefreshSlack).After(r.expires) {
			r.expires = r.expires.Add(r.ttl - relayRefreshSlack)
		}
		t.relays[id] = r
	}
	return r.expires
}

// portMapping reports the NAT manager's state.
func (t *statusTracker) portMapping(h host.Host) PortMapping {
	t.natMu.Lock()
	m, since := t.natmgr, t.natStart
	t.natMu.Unlock()
	if m == nil {
		return PortMapping{State: "off", Mapped: []ma.Multiaddr{}}
	}
	pm := PortMapping{Enabled: true, Mapped: []ma.Multiaddr{}}
	if !m.HasDiscoveredNAT() {
		// libp2p gives up looking for a UPnP/NAT-PMP gateway after 10 s.
		if time.Since(since) < 15*time.Second {
			pm.State = "searching"
		} else {
			pm.State = "failed"
			pm.Error = "no UPnP or NAT-PMP gateway answered"
		}
		return pm
	}
	for _, a := range h.Network().ListenAddresses() {
		if ext := m.GetMapping(a); ext != nil {
			pm.Mapped = append(pm.Mapped, ext)
		}
	}
	sortByText(pm.Mapped)
	if len(pm.Mapped) > 0 {
		pm.State = "mapped"
	} else {
		pm.State = "failed"
		pm.Error = "the gateway gave no mapping"
	}
	return pm
}

func reachabilityString(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// Status reports why this node can or cannot be reached.
func (n *Node) Status() Status {
	t, h := n.status, n.host
	now := time.Now()
	t.mu.Lock()
	st := Status{
		PublicNetwork:      n.cfg.Discovery.PublicNetwork,
		Reachability:       reachabilityString(t.reach),
		ReachabilitySource: t.reachSource,
		NATTypes:           make(map[string]string, len(t.natTypes)),
		HolePunch: HolePunchStats{Attempts: t.hp.Attempts, Successes: t.hp.Successes,
			Failures: t.hp.Failures, Recent: append([]HolePunchAttempt(nil), t.hp.Recent...)},
	}
	for k, v := range t.natTypes {
		st.NATTypes[k] = v
	}
	for _, o := range t.observed {
		st.ObservedAddrs = append(st.ObservedAddrs, o.addr)
	}
	t.mu.Unlock()
	sortByText(st.ObservedAddrs)
	st.ListenAddrs = append(st.ListenAddrs, h.Network().ListenAddresses()...)
	circuits := map[peer.ID][]ma.Multiaddr{}
	for _, a := range h.Addrs() {
		st.AnnouncedAddrs = append(st.AnnouncedAddrs, a)
		if id, ok := circuitRelay(a); ok {
			circuits[id] = append(circuits[id], a)
		}
	}
	for _, id := range reservedRelays(h) {
		r := RelayReservation{Relay: id, Addrs: circuits[id], Expires: t.relayExpires(id, now)}
		if len(r.Addrs) == 0 {
			// libp2p announces circuit addresses only through relays with
			// public addresses; show the one the node reaches the relay on.
			suffix := ma.StringCast("/p2p/" + id.String() + "/p2p-circuit")
			for _, c := range h.Network().ConnsToPeer(id) {
				if transportOf(c.RemoteMultiaddr()) != "circuit" {
					r.Addrs = append(r.Addrs, c.RemoteMultiaddr().Encapsulate(suffix))
					break
				}
			}
		}
		st.Relays = append(st.Relays, r)
	}
	sort.Slice(st.Relays, func(i, j int) bool { return st.Relays[i].Relay < st.Relays[j].Relay })
	st.PortMapping = t.portMapping(h)
	st.Peers = n.Peers()
	return st
}

// sortByText sorts addresses by their text, the order the status has
// always listed them in.
func sortByText(as []ma.Multiaddr) {
	sort.Slice(as, func(i, j int) bool { return as[i].String() < as[j].String() })
}

// transportOf names the transport of a connection's remote address.
func transportOf(a ma.Multiaddr) string {
	name := ""
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_CIRCUIT:
			return "circuit"
		case ma.P_TCP:
			name = "tcp"
		case ma.P_QUIC_V1:
			name = "quic-v1"
		case ma.P_QUIC:
			name = "quic"
		case ma.P_WEBTRANSPORT:
			name = "webtransport"
		case ma.P_WEBRTC_DIRECT:
			name = "webrtc-direct"
		case ma.P_WS, ma.P_WSS:
			name = "ws"
		}
	}
	return name
}
