package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/testutil"
)

// newAminoNode starts a node on the public network with warren's own DHT
// off, so that only the Amino DHT can find peers. Its bootstrap peers and
// address filters are replaced, so that it stays on loopback.
func newAminoNode(t *testing.T, server bool) *Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	cfg.Addresses.Listen = cfg.Addresses.Listen[:1]
	cfg.Discovery.DHT, cfg.Discovery.PublicNetwork = "off", true
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mode := dht.ModeClient
	if server {
		mode = dht.ModeServer
	}
	n, err := New(context.Background(), cfg, key, Options{amino: []dht.Option{
		dht.Mode(mode), dht.BootstrapPeers(),
		dht.QueryFilter(func(any, peer.AddrInfo) bool { return true }),
		dht.RoutingTableFilter(func(any, peer.ID) bool { return true }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// With public_network, a peer known only by its ID is found through the
// Amino DHT (/ipfs/kad/1.0.0), here with warren's own DHT off.
func TestConnectByPeerIDThroughAminoDHT(t *testing.T) {
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub := newAminoNode(t, true)
	a, c := newAminoNode(t, false), newAminoNode(t, false)
	if a.PublicDHT() == nil || a.DHT() != nil {
		t.Fatal("want the Amino DHT and not warren's")
	}
	if !slices.Contains(hub.Host().Mux().Protocols(), protocol.ID(AminoProtocol)) {
		t.Fatalf("the hub does not serve %s: %v", AminoProtocol, hub.Host().Mux().Protocols())
	}
	for _, n := range []*Node{a, c} {
		if err := n.Connect(ctx, addrInfo(hub)); err != nil {
			t.Fatal(err)
		}
	}
	// The hub joins a's routing table once identify has said it serves the
	// DHT, after Connect returns; a lookup before that finds no one to ask.
	testutil.Eventually(t, 10*time.Second, "the hub in a's Amino routing table", func() bool {
		return a.PublicDHT().RoutingTable().Find(hub.ID()) != ""
	})
	// c is a DHT client, so it is in no routing table; the hub answers a
	// lookup of a peer it is connected to with that peer's addresses.
	_ = a.Host().Network().ClosePeer(c.ID())
	a.Host().Peerstore().ClearAddrs(c.ID())
	// The hub learns c's addresses from identify, after c's Connect has
	// returned, so an early lookup may still be told "not found": retry
	// for a while, as a user would.
	testutil.EventuallyNil(t, 10*time.Second, func() error {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		defer ccancel()
		if err := a.Connect(cctx, peer.AddrInfo{ID: c.ID()}); err != nil {
			return fmt.Errorf("connect by peer ID through the Amino DHT: %w", err)
		}
		return nil
	})
	for _, n := range []*Node{a, hub, c} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The public network is off in the test profile and on in the default one;
// a node without it has no Amino DHT.
func TestPublicNetworkProfiles(t *testing.T) {
	def, _ := config.ForProfile(config.ProfileDefault)
	test, _ := config.ForProfile(config.ProfileTest)
	if !def.Discovery.PublicNetwork || test.Discovery.PublicNetwork {
		t.Fatalf("public_network: default %v, test %v", def.Discovery.PublicNetwork, test.Discovery.PublicNetwork)
	}
	if n := newTestNode(t); n.PublicDHT() != nil {
		t.Fatal("the test profile started an Amino DHT")
	}
	if o := aminoOptions(def); len(o) != 4 {
		t.Fatalf("amino options %d", len(o))
	}
}

// With public_network, topic rendezvous goes to the Amino DHT too: a
// namespace advertised by one node is found by another through the hub's
// Amino DHT alone (warren's DHT is off here), each finder once.
func TestTopicRendezvousOnAminoDHT(t *testing.T) {
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub := newAminoNode(t, true)
	a, c := newAminoNode(t, false), newAminoNode(t, false)
	for _, n := range []*Node{a, c} {
		if err := n.Connect(ctx, addrInfo(hub)); err != nil {
			t.Fatal(err)
		}
	}
	const ns = "floodsub:/warren/warren/topic/chat"
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := a.Discovery().Advertise(ctx, ns); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("advertise on the Amino DHT: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// c's routing table holds the hub once identify has run.
	for found := false; !found; time.Sleep(200 * time.Millisecond) {
		ch, err := c.Discovery().FindPeers(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		for ai := range ch {
			found = found || ai.ID == a.ID()
		}
		if !found && time.Now().After(deadline) {
			t.Fatal("c did not find a under the topic's key on the Amino DHT")
		}
	}

	// Both DHTs at once: multiDiscovery merges and deduplicates.
	md := multiDiscovery{c.Discovery(), c.Discovery()}
	ch, err := md.FindPeers(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ai := range ch {
		if ai.ID == a.ID() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("merged discovery gave a %d times, want once", n)
	}
	for _, n := range []*Node{a, hub, c} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
