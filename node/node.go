// Package node owns warren's libp2p host: transports, security, muxer,
// connection and resource managers, NAT traversal, and peer discovery
// (bootstrap peers, mDNS, a Kademlia DHT under warren's own protocol prefix).
// It dials peers by multiaddr or by peer ID alone, pings them and lists them.
// Everything above it (messages, gossip, tunnels) only needs its host.Host.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/warren-p2p/warren/config"
)

// Options are the parts of a node that do not come from the config file.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // libp2p's metrics go here; nil disables them
	UserAgent  string
	// amino are extra options of the Amino DHT, after warren's own (tests
	// replace its bootstrap peers and address filters with them).
	amino []dht.Option
	// Services are resource-manager limits of warren's own services (those
	// whose stream handlers call str.Scope().SetService(Name)). They apply
	// only while swarm.resource_manager.enabled is true.
	Services []ServiceLimit
	// Libp2p options are appended to those the config gives (they must not
	// repeat one that may be given only once, such as the identity).
	Libp2p []libp2p.Option
	// Host, if set, is used instead of building one (for a mocknet host in
	// tests): the config's addresses, swarm settings and Libp2p do not
	// apply, discovery (DHT, mDNS, bootstrap) does. Close closes it.
	Host host.Host
}

// Errors of Connect that callers branch on (errors.Is).
var (
	// ErrSelf: the peer is this node.
	ErrSelf = errors.New("that is this node's own peer ID")
	// ErrNoAddress: a bare peer ID with no known address, and no DHT to
	// look it up in.
	ErrNoAddress = errors.New("no known address for this peer and the DHT is off")
	// ErrNoPeersToAsk: a bare peer ID with no known address, and no peer
	// connected yet to look it up through.
	ErrNoPeersToAsk = errors.New("no peers to ask yet; connect by multiaddr first or set bootstrap peers")
	// ErrOtherNetwork is wrapped by *OtherNetworkError.
	ErrOtherNetwork = errors.New("peer is on another warren network")
)

// OtherNetworkError is returned by Connect when the peer turns out to be a
// warren node of another network (from the protocols identify reported):
// the connection is closed again, as the two could exchange nothing.
type OtherNetworkError struct {
	Peer    peer.ID
	Network string // the peer's network
	Ours    string // this node's network
}

func (e *OtherNetworkError) Error() string {
	return fmt.Sprintf("connect %s: the peer is on warren network %q, this node on %q (config network)", e.Peer, e.Network, e.Ours)
}

// Unwrap makes errors.Is(err, ErrOtherNetwork) true.
func (e *OtherNetworkError) Unwrap() error { return ErrOtherNetwork }

// Node is a running libp2p host with discovery.
type Node struct {
	host host.Host
	dht  *dht.IpfsDHT
	// amino is the public Amino DHT client ([discovery] public_network).
	amino *dht.IpfsDHT
	// router finds peers by ID: warren's DHT and the Amino DHT together.
	router routing.PeerRouting
	cfg    config.Config
	log    *slog.Logger
	mdns   mdns.Service
	// status follows reachability, relays and hole punches for Status.
	status *statusTracker

	ready  chan struct{} // closed once host is set
	dials  singleflight.Group
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	close  sync.Once
}

// DHTProtocolPrefix is the prefix of warren's Kademlia protocol for a network,
// so that warren networks never join the public IPFS DHT or one another.
func DHTProtocolPrefix(network string) protocol.ID {
	return protocol.ID("/warren/" + network)
}

// New starts a node: it listens, joins the DHT and begins discovery.
// Bootstrap peers are dialled in the background; New does not wait for them.
func New(ctx context.Context, cfg config.Config, key crypto.PrivKey, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	if key == nil {
		return nil, errors.New("start node: no identity key")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := usePublicRanges(cfg.Swarm.PublicRanges); err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	st, err := newStatusTracker(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	n := &Node{cfg: cfg, log: log, ready: make(chan struct{}), status: st}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	if opts.Host != nil {
		return n.start(opts.Host, opts)
	}
	hopts, err := hostOptions(cfg, key, opts, n.relayCandidates, st)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("start node: %w", err)
	}
	hopts = append(hopts, opts.Libp2p...)
	if cfg.Discovery.DHT != "off" || cfg.Discovery.PublicNetwork {
		hopts = append(hopts, libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
			return n.startRouting(h, opts)
		}))
	}
	h, err := libp2p.New(hopts...)
	if err != nil {
		n.cancel()
		n.closeRouting()
		return nil, fmt.Errorf("start node: %w", err)
	}
	return n.start(h, opts)
}

// start runs discovery on the node's host; a given host (Options.Host)
// gets its DHT here.
func (n *Node) start(h host.Host, opts Options) (*Node, error) {
	cfg, log := n.cfg, n.log
	if n.router == nil && (cfg.Discovery.DHT != "off" || cfg.Discovery.PublicNetwork) {
		if _, err := n.startRouting(h, opts); err != nil {
			n.cancel()
			_ = h.Close()
			return nil, fmt.Errorf("start node: %w", err)
		}
	}
	n.host = h
	close(n.ready)

	forced := cfg.Swarm.Reachability
	if forced == "auto" {
		forced = ""
	}
	subscribed := make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.status.run(n.ctx, h, forced, func() { close(subscribed) }); err != nil {
			n.log.Warn("status tracking stopped", "err", err)
		}
	}()
	<-subscribed

	if cfg.Discovery.MDNS {
		n.mdns = mdns.NewMdnsService(h, "_warren-"+cfg.Network+"._udp", mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			n.log.Warn("mDNS discovery did not start", "err", err)
			n.mdns = nil
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.bootstrap()
	}()
	log.Info("node started", "peer", h.ID(), "addrs", h.Addrs(), "network", cfg.Network)
	return n, nil
}

func hostOptions(cfg config.Config, key crypto.PrivKey, opts Options, relays autorelay.PeerSource, st *statusTracker) ([]libp2p.Option, error) {
	o := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.BandwidthReporter(st.bw),
		libp2p.ListenAddrStrings(cfg.Addresses.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Ping(true),
	}
	if cfg.Swarm.PreferTransport == "tcp" {
		o = append(o, libp2p.DialRanker(tcpFirstRanker))
	}
	if opts.UserAgent != "" {
		o = append(o, libp2p.UserAgent(opts.UserAgent))
	}
	for _, s := range cfg.Swarm.Security {
		switch s {
		case "noise":
			o = append(o, libp2p.Security(noise.ID, noise.New))
		case "tls":
			o = append(o, libp2p.Security(libp2ptls.ID, newGatherTLS))
		}
	}
	if len(cfg.Addresses.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(cfg.Addresses.Announce))
		for _, s := range cfg.Addresses.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("addresses.announce %q: %w", s, err)
			}
			announce = append(announce, a)
		}
		o = append(o, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	} else {
		o = append(o, libp2p.AddrsFactory(withoutNATAddrs))
	}
	cm, err := connmgr.NewConnManager(cfg.Swarm.ConnMgr.LowWater, cfg.Swarm.ConnMgr.HighWater,
		connmgr.WithGracePeriod(cfg.Swarm.ConnMgr.GracePeriod.Std()))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	o = append(o, libp2p.ConnectionManager(cm))
	rm, err := resourceManager(cfg.Swarm.ResourceManager, opts.Services)
	if err != nil {
		return nil, err
	}
	o = append(o, libp2p.ResourceManager(rm))
	if opts.Registerer != nil {
		o = append(o, libp2p.PrometheusRegisterer(opts.Registerer))
	} else {
		o = append(o, libp2p.DisableMetrics())
	}
	sw := cfg.Swarm
	if sw.NATPortMap {
		o = append(o, libp2p.NATManager(st.newNATManager))
	}
	if sw.AutoNAT {
		// AutoNAT v2 finds which of our addresses are reachable; the v1
		// service answers other nodes' probes, as kubo's nodes do. Without
		// any v1 server a node's reachability stays "unknown" and is never
		// announced, so AutoRelay (started by that announcement) never
		// looks for a relay. libp2p throttles the service (30 dial-backs a
		// minute, 3 per peer) and dials back only public addresses.
		o = append(o, libp2p.EnableAutoNATv2(), libp2p.EnableNATService())
	}
	switch sw.Reachability {
	case "public":
		o = append(o, libp2p.ForceReachabilityPublic())
	case "private":
		o = append(o, libp2p.ForceReachabilityPrivate())
	}
	if sw.HolePunching {
		// The status tracer replaces libp2p's metrics tracer, so it is
		// given back here with the same collectors.
		hp := holepunch.WithTracer(st)
		if opts.Registerer != nil {
			hp = holepunch.WithMetricsAndEventTracer(
				holepunch.NewMetricsTracer(holepunch.WithRegisterer(opts.Registerer)), st)
		}
		o = append(o, libp2p.EnableHolePunching(hp))
	}
	if sw.RelayClient {
		o = append(o, libp2p.EnableRelay())
		if len(sw.StaticRelays) > 0 {
			relays := make([]peer.AddrInfo, 0, len(sw.StaticRelays))
			for _, s := range sw.StaticRelays {
				ai, err := peer.AddrInfoFromString(s)
				if err != nil {
					return nil, fmt.Errorf("swarm.static_relays %q: %w", s, err)
				}
				relays = append(relays, *ai)
			}
			o = append(o, libp2p.EnableAutoRelayWithStaticRelays(relays))
		} else {
			// Reserve as soon as one relay is known: libp2p otherwise waits
			// for 4 candidates or 3 minutes, and a small network may have
			// one or two relays.
			o = append(o, libp2p.EnableAutoRelayWithPeerSource(relays, autorelay.WithMinCandidates(1)))
		}
	} else if !sw.RelayService {
		o = append(o, libp2p.DisableRelay())
	}
	if sw.RelayService {
		o = append(o, libp2p.EnableRelay(), libp2p.EnableRelayService(relayLimit(sw.RelayLimit)))
	}
	return o, nil
}

// relayLimit turns swarm.relay_limit into the relay service's option.
func relayLimit(l config.RelayLimit) relayv2.Option {
	if l.Duration == 0 && l.Data == 0 {
		return relayv2.WithInfiniteLimits()
	}
	lim := &relayv2.RelayLimit{Duration: l.Duration.Std(), Data: l.Data}
	if lim.Duration == 0 {
		lim.Duration = 100 * 365 * 24 * time.Hour // no time limit; data still bounded
	}
	if lim.Data == 0 {
		lim.Data = 1 << 62 // no data limit; time still bounded
	}
	return relayv2.WithLimit(lim)
}

func dhtOptions(cfg config.Config) []dht.Option {
	mode := dht.ModeAuto
	switch cfg.Discovery.DHT {
	case "server":
		mode = dht.ModeServer
	case "client":
		mode = dht.ModeClient
	}
	return []dht.Option{dht.Mode(mode), dht.ProtocolPrefix(DHTProtocolPrefix(cfg.Network))}
}

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the Kademlia DHT, or nil when it is off.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// Config returns the configuration the node runs with.
func (n *Node) Config() config.Config { return n.cfg }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Addrs returns the node's full multiaddrs, each ending in /p2p/<id>,
// sorted by their text.
func (n *Node) Addrs() []ma.Multiaddr {
	p2p, _ := ma.NewComponent("p2p", n.host.ID().String())
	out := make([]ma.Multiaddr, 0, len(n.host.Addrs()))
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(p2p.Multiaddr()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// ParseTarget reads a peer given as a multiaddr ending in /p2p/<id>, or as a
// bare peer ID (AddrInfo without Addrs): config.ParsePeer, warren's one
// parser of peers written as text.
func ParseTarget(s string) (peer.AddrInfo, error) { return config.ParsePeer(s) }

// ParsePeerID reads a bare peer ID, with an error that names the input.
func ParsePeerID(s string) (peer.ID, error) {
	id, err := peer.Decode(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("bad peer ID %q: expected a base58 or CID peer ID such as 12D3KooW...", s)
	}
	return id, nil
}

// Connect dials a peer. A peer given without addresses (a bare peer ID) is
// found through the peerstore, else the DHT. Concurrent connects to one
// peer share one dial. A warren peer of another network is disconnected
// again with an *OtherNetworkError.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == "" {
		return errors.New("connect: empty peer ID")
	}
	if ai.ID == n.host.ID() {
		return fmt.Errorf("connect %s: %w", ai.ID, ErrSelf)
	}
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	res := n.dials.DoChan(ai.ID.String(), func() (any, error) {
		return nil, n.connect(ctx, ai)
	})
	select {
	case r := <-res:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("connect %s: %w", ai.ID, ctx.Err())
	}
}

func (n *Node) connect(ctx context.Context, ai peer.AddrInfo) error {
	if n.host.Network().Connectedness(ai.ID) == network.Connected {
		return n.checkNetwork(ai.ID)
	}
	if len(n.host.Peerstore().Addrs(ai.ID)) == 0 {
		if n.router == nil {
			return fmt.Errorf("connect %s: %w; give a multiaddr ending in /p2p/%s", ai.ID, ErrNoAddress, ai.ID)
		}
		if len(n.host.Network().Peers()) == 0 {
			return fmt.Errorf("connect %s: %w", ai.ID, ErrNoPeersToAsk)
		}
		n.awaitRoutingTable(ctx)
		found, err := n.router.FindPeer(ctx, ai.ID)
		switch {
		case err == nil:
			ai = found
		case len(n.host.Peerstore().Addrs(ai.ID)) == 0:
			return n.explainConnect(ai.ID, err, nil)
		default:
			// The lookup learned the peer's addresses from a DHT peer
			// but gave up before using them: a stale routing-table
			// entry for the peer itself, tried first with no address,
			// marks it unreachable for the rest of the query. Dial
			// the addresses it learned.
		}
	}
	n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	ai = peer.AddrInfo{ID: ai.ID}
	// The peerstore may hold the NAT addresses of a peer behind NAT from
	// the DHT's answers too; see behindNAT.
	all := n.host.Peerstore().Addrs(ai.ID)
	keep := behindNAT(peer.AddrInfo{ID: ai.ID, Addrs: all})
	if len(keep.Addrs) < len(all) {
		for _, a := range all {
			if !slices.ContainsFunc(keep.Addrs, a.Equal) {
				n.host.Peerstore().SetAddr(ai.ID, a, 0)
			}
		}
	}
	// A connect asked for now is tried now: an earlier failure's dial
	// backoff would otherwise fail it at once.
	if sw, ok := n.host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		sw.Backoff().Clear(ai.ID)
	}
	if err := n.host.Connect(ctx, ai); err != nil {
		return n.explainConnect(ai.ID, nil, err)
	}
	return n.checkNetwork(ai.ID)
}

// routingTableWait bounds how long a lookup by peer ID waits for a
// connected DHT server to enter a routing table. The DHT adds a peer only
// after identify and a lookup check of its own (a round trip), so a lookup
// right after the first connect (to a bootstrap peer, say) found the table
// empty and failed at once with "failed to find any peer in table".
const routingTableWait = 5 * time.Second

// awaitRoutingTable waits, at most routingTableWait, while every routing
// table of the node is empty although a connected peer serves its DHT.
func (n *Node) awaitRoutingTable(ctx context.Context) {
	type table struct {
		d     *dht.IpfsDHT
		proto protocol.ID
	}
	var tables []table
	if n.dht != nil {
		tables = append(tables, table{n.dht, DHTProtocolPrefix(n.cfg.Network) + "/kad/1.0.0"})
	}
	if n.amino != nil {
		tables = append(tables, table{n.amino, AminoProtocol})
	}
	pending := func() bool {
		for _, t := range tables {
			if t.d.RoutingTable().Size() > 0 {
				return false
			}
		}
		for _, p := range n.host.Network().Peers() {
			for _, t := range tables {
				if ok, _ := n.host.Peerstore().SupportsProtocols(p, t.proto); len(ok) > 0 {
					return true
				}
			}
		}
		return false
	}
	if !pending() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, routingTableWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for pending() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// warrenNetwork returns the warren network a peer serves, from the
// protocols identify reported (/warren/<network>/...), or "" if it serves
// none, such as a plain libp2p node.
func (n *Node) warrenNetwork(p peer.ID) (network string, ours bool) {
	protos, _ := n.host.Peerstore().GetProtocols(p)
	for _, proto := range protos {
		rest, ok := strings.CutPrefix(string(proto), "/warren/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if name == n.cfg.Network {
			return name, true
		}
		network = name
	}
	return network, false
}

// checkNetwork refuses a connected peer that serves only another warren
// network, closing its connections.
func (n *Node) checkNetwork(p peer.ID) error {
	other, ours := n.warrenNetwork(p)
	if ours || other == "" {
		return nil
	}
	_ = n.host.Network().ClosePeer(p)
	return &OtherNetworkError{Peer: p, Network: other, Ours: n.cfg.Network}
}

// behindNAT drops the public direct addresses of a peer that announces
// relay (circuit) addresses: such a peer says it cannot be dialled; its
// public addresses are what others saw of its NAT, which drops unsolicited
// connections. Dialling them does not only fail. libp2p keeps dialling
// them after the relayed connection is up, from this node's listen port to
// the peer's NAT address and port: the very TCP 4-tuple the hole punch that
// follows the relayed connection must dial, and a SYN crossing the peer's
// own dial can leave a socket lingering on it, so that libp2p's hole-punch
// dial falls back to a random port that no NAT mapping fits. The direct
// connection is left to the hole punch.
func behindNAT(ai peer.AddrInfo) peer.AddrInfo {
	relayed := false
	for _, a := range ai.Addrs {
		relayed = relayed || isCircuit(a)
	}
	if !relayed {
		return ai
	}
	out := peer.AddrInfo{ID: ai.ID}
	for _, a := range ai.Addrs {
		if isCircuit(a) || !manet.IsPublicAddr(a) {
			out.Addrs = append(out.Addrs, a)
		}
	}
	return out
}

// withoutNATAddrs is the announced addresses of a node that holds relay
// reservations: its circuit and private addresses, without the public
// direct ones that AutoNAT v2 has not found unreachable yet (libp2p keeps
// those while AutoNAT v1 alone would drop them). They are its NAT's
// addresses as peers observed them; a peer that dials one while this node
// hole-punches to it collides with the hole punch (see behindNAT). Hole
// punching itself still gets the observed addresses: libp2p adds them to
// its own list.
func withoutNATAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	return behindNAT(peer.AddrInfo{Addrs: addrs}).Addrs
}

// Disconnect closes every connection to a peer.
func (n *Node) Disconnect(p peer.ID) error {
	// Limited (relayed) connections are connections too.
	if c := n.host.Network().Connectedness(p); c != network.Connected && c != network.Limited {
		return fmt.Errorf("disconnect %s: not connected to this peer", p)
	}
	if err := n.host.Network().ClosePeer(p); err != nil {
		return fmt.Errorf("disconnect %s: %w", p, err)
	}
	return nil
}

// Ping measures count round trips to a peer over libp2p's ping protocol.
func (n *Node) Ping(ctx context.Context, p peer.ID, count int) ([]time.Duration, error) {
	if count <= 0 {
		return nil, fmt.Errorf("ping: count %d: expected a number > 0", count)
	}
	if p == n.host.ID() {
		return nil, fmt.Errorf("ping %s: %w", p, ErrSelf)
	}
	if err := n.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := ping.Ping(ctx, n.host, p)
	rtts := make([]time.Duration, 0, count)
	for len(rtts) < count {
		select {
		case r, ok := <-results:
			if !ok {
				return rtts, fmt.Errorf("ping %s: stopped after %d replies", p, len(rtts))
			}
			if r.Error != nil {
				return rtts, fmt.Errorf("ping %s: %w", p, r.Error)
			}
			rtts = append(rtts, r.RTT)
		case <-ctx.Done():
			return rtts, fmt.Errorf("ping %s: %w", p, ctx.Err())
		}
	}
	return rtts, nil
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID        peer.ID      `json:"id"`
	Addr      ma.Multiaddr `json:"addr"`
	Direction string       `json:"direction"`
	Limited   bool         `json:"limited"`
	Streams   int          `json:"streams"`
	LatencyMS float64      `json:"latency_ms"`
	Direct    bool         `json:"direct"`    // false when reached only through a relay
	Transport string       `json:"transport"` // tcp, quic-v1, ..., or circuit
	BytesIn   int64        `json:"bytes_in"`  // since the node started; a peer gone for 10 min is forgotten
	BytesOut  int64        `json:"bytes_out"`
}

// Peers lists the connected peers, one entry per peer. A peer with a direct
// connection is shown on it, even if a relayed (limited) one came first, as
// after a hole punch; streams counts the streams of all its connections.
func (n *Node) Peers() []PeerInfo {
	idx := map[peer.ID]int{}
	var out []PeerInfo
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		info := PeerInfo{
			ID:        p,
			Addr:      c.RemoteMultiaddr(),
			Direction: c.Stat().Direction.String(),
			Limited:   c.Stat().Limited,
			Streams:   len(c.GetStreams()),
			LatencyMS: float64(n.host.Peerstore().LatencyEWMA(p).Microseconds()) / 1000,
			Transport: transportOf(c.RemoteMultiaddr()),
		}
		info.Direct = info.Transport != "circuit"
		i, seen := idx[p]
		if !seen {
			idx[p] = len(out)
			out = append(out, info)
			continue
		}
		info.Streams += out[i].Streams
		if (!out[i].Direct && info.Direct) || (out[i].Limited && !info.Limited) {
			out[i] = info
		} else {
			out[i].Streams = info.Streams
		}
	}
	for i := range out {
		bw := n.status.bw.GetBandwidthForPeer(out[i].ID)
		out[i].BytesIn, out[i].BytesOut = bw.TotalIn, bw.TotalOut
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// bootstrap dials the configured bootstrap peers, then starts the DHT's
// routing-table refresh.
func (n *Node) bootstrap() {
	var g errgroup.Group
	g.SetLimit(8)
	for _, s := range n.cfg.Discovery.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			n.log.Warn("bad bootstrap peer", "addr", s, "err", err)
			continue
		}
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
			defer cancel()
			if err := n.host.Connect(ctx, *ai); err != nil {
				n.log.Warn("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				return nil
			}
			n.log.Info("connected to bootstrap peer", "peer", ai.ID)
			return nil
		})
	}
	_ = g.Wait()
	if n.dht != nil && n.ctx.Err() == nil {
		if err := n.dht.Bootstrap(n.ctx); err != nil {
			n.log.Warn("DHT bootstrap failed", "err", err)
		}
	}
	if n.amino != nil && n.ctx.Err() == nil {
		if err := n.amino.Bootstrap(n.ctx); err != nil {
			n.log.Warn("Amino DHT bootstrap failed", "err", err)
		}
	}
}

// relayHop is the protocol a circuit relay v2 offers its clients.
const relayHop = "/libp2p/circuit/relay/0.2.0/hop"

// relayCandidates feeds autorelay, when no static relays are configured:
// first connected peers that offer the relay service, then peers of the
// DHTs' routing tables (the Amino DHT's are public peers, many of them
// relays), which autorelay dials and keeps if they offer the service.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		select { // autorelay may ask before libp2p.New has returned the host
		case <-n.ready:
		case <-ctx.Done():
			return
		}
		sent := map[peer.ID]bool{}
		send := func(p peer.ID) bool {
			if num <= 0 || sent[p] || p == n.host.ID() {
				return num > 0
			}
			sent[p] = true
			select {
			case out <- n.host.Peerstore().PeerInfo(p):
				num--
				return num > 0
			case <-ctx.Done():
				return false
			}
		}
		for _, p := range n.host.Network().Peers() {
			if ok, _ := n.host.Peerstore().SupportsProtocols(p, relayHop); len(ok) == 0 {
				continue
			}
			if !send(p) {
				return
			}
		}
		for _, d := range []*dht.IpfsDHT{n.amino, n.dht} {
			if d == nil {
				continue
			}
			for _, p := range d.RoutingTable().ListPeers() {
				if !send(p) {
					return
				}
			}
		}
	}()
	return out
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.host.ID() || n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 15*time.Second)
		defer cancel()
		if err := n.host.Connect(ctx, ai); err != nil {
			n.log.Debug("mDNS peer unreachable", "peer", ai.ID, "err", err)
			return
		}
		n.log.Info("connected to peer found by mDNS", "peer", ai.ID)
	}()
}

// Close stops discovery, closes every connection and the host, and waits for
// the node's goroutines.
func (n *Node) Close() error {
	var errs []error
	n.close.Do(func() {
		n.cancel()
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		n.wg.Wait()
		errs = append(errs, n.closeRouting())
		errs = append(errs, n.host.Close())
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	return nil
}
