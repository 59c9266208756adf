package node

// The public libp2p network ([discovery] public_network): an Amino DHT
// client beside warren's own DHT, as kubo runs it, for finding peers by ID,
// relays and AutoNAT servers, and topic members across NATs.

import (
	"context"
	"errors"
	"fmt"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/warren-p2p/warren/config"
)

// AminoProtocol is the Kademlia protocol of the public Amino DHT.
const AminoProtocol = dht.DefaultPrefix + "/kad/1.0.0"

// startRouting starts warren's DHT and, with public_network, the Amino
// DHT, and returns the peer routing over both: a lookup by ID asks both at
// once and takes the first answer.
func (n *Node) startRouting(h host.Host, opts Options) (routing.PeerRouting, error) {
	cfg := n.cfg
	var routers parallelRouting
	if cfg.Discovery.DHT != "off" {
		d, err := dht.New(h, dhtOptions(cfg)...)
		if err != nil {
			return nil, fmt.Errorf("start DHT: %w", err)
		}
		n.dht = d
		routers = append(routers, d)
	}
	if cfg.Discovery.PublicNetwork {
		d, err := dht.New(h, append(aminoOptions(cfg), opts.amino...)...)
		if err != nil {
			n.closeRouting()
			return nil, fmt.Errorf("start the Amino DHT: %w", err)
		}
		n.amino = d
		routers = append(routers, d)
	}
	if len(routers) == 1 {
		n.router = routers[0]
	} else {
		n.router = routers
	}
	return n.router, nil
}

// aminoOptions are kubo's settings of its public (WAN) DHT: kubo's
// bootstrap peers, and only peers with public addresses (those of [swarm]
// public_ranges count as public) in the routing table and in queries. The
// node is a client, so it stores no one's records, except with
// [discovery] dht = "server", which says the node is public: then it
// serves the Amino DHT too.
func aminoOptions(cfg config.Config) []dht.Option {
	mode := dht.ModeClient
	if cfg.Discovery.DHT == "server" {
		mode = dht.ModeServer
	}
	return []dht.Option{
		dht.Mode(mode),
		dht.BootstrapPeers(dht.GetDefaultBootstrapPeerAddrInfos()...),
		dht.QueryFilter(dht.PublicQueryFilter),
		dht.RoutingTableFilter(dht.PublicRoutingTableFilter),
	}
}

// PublicDHT returns the Amino DHT client, or nil when public_network is off.
func (n *Node) PublicDHT() *dht.IpfsDHT { return n.amino }

func (n *Node) closeRouting() error {
	var errs []error
	if n.amino != nil {
		errs = append(errs, n.amino.Close())
	}
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	return errors.Join(errs...)
}

// parallelRouting asks every router for a peer at once and answers the
// first that finds it (go-libp2p-routing-helpers' Parallel, for peer
// routing only, without its dependencies).
type parallelRouting []routing.PeerRouting

func (rs parallelRouting) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		ai  peer.AddrInfo
		err error
	}
	answers := make(chan answer, len(rs))
	for _, r := range rs {
		go func() {
			ai, err := r.FindPeer(ctx, p)
			answers <- answer{ai, err}
		}()
	}
	var errs []error
	for range rs {
		a := <-answers
		if a.err == nil && len(a.ai.Addrs) > 0 {
			return a.ai, nil
		}
		if a.err != nil {
			errs = append(errs, a.err)
		}
	}
	// One line: not found when every router says so, else the first other
	// error (a cancelled context, a DHT with no peers).
	for _, err := range errs {
		if !errors.Is(err, routing.ErrNotFound) {
			return peer.AddrInfo{}, err
		}
	}
	return peer.AddrInfo{}, routing.ErrNotFound
}
