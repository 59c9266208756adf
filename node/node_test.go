package node

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/testutil"
)

func newTestNode(t *testing.T, mutate ...func(*config.Config)) *Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	cfg.Addresses.Listen = cfg.Addresses.Listen[:1] // TCP only: quicker to start and stop
	for _, m := range mutate {
		m(&cfg)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), cfg, key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// verifyNoLeaks checks, after the test's other cleanups (its nodes'
// Close) have run, that none of the test's goroutines is left. Call it
// before creating anything with a cleanup.
func verifyNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func TestConnectByPeerIDThroughDHT(t *testing.T) {
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, hub, c := newTestNode(t), newTestNode(t), newTestNode(t)
	// a and c each know only hub.
	for _, n := range []*Node{a, c} {
		if err := n.Connect(ctx, addrInfo(hub)); err != nil {
			t.Fatal(err)
		}
	}
	// The DHT adds peers to its routing table after identify; wait for hub to know c.
	deadline := time.Now().Add(10 * time.Second)
	for hub.DHT().RoutingTable().Find(c.ID()) == "" || hub.DHT().RoutingTable().Find(a.ID()) == "" {
		if time.Now().After(deadline) {
			t.Fatal("hub's routing table never learned its peers")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// a was never given c's address, but the DHT's own refresh may have led
	// it to c already. Forget c entirely so Connect must look it up.
	a.DHT().RoutingTable().RemovePeer(c.ID())
	_ = a.Host().Network().ClosePeer(c.ID())
	a.Host().Peerstore().ClearAddrs(c.ID())
	if len(a.Host().Peerstore().Addrs(c.ID())) != 0 {
		t.Fatal("a still knows c's addresses; the test would not exercise the DHT")
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: c.ID()}); err != nil {
		t.Fatalf("connect by peer ID alone: %v", err)
	}
	if a.Host().Network().Connectedness(c.ID()) != network.Connected {
		t.Fatal("not connected after Connect")
	}
	rtts, err := a.Ping(ctx, c.ID(), 3)
	if err != nil || len(rtts) != 3 {
		t.Fatalf("ping: %v %v", rtts, err)
	}
	found := false
	for _, p := range a.Peers() {
		found = found || p.ID == c.ID()
	}
	if !found {
		t.Fatalf("peers of a lack c: %+v", a.Peers())
	}
	if err := a.Disconnect(c.ID()); err != nil {
		t.Fatal(err)
	}
	if err := a.Disconnect(c.ID()); err == nil {
		t.Fatal("disconnecting a peer twice should say it is not connected")
	}
	for _, n := range []*Node{a, hub, c} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A peer in the routing table whose addresses are gone (expired, or the
// peer moved) is the lookup's closest candidate: the DHT tries it first,
// fails with no address, and marks it unreachable, so it ignores the
// fresh addresses another peer then returns. Connect dials those.
func TestConnectByIDWithAStaleRoutingEntry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, hub, c := newTestNode(t), newTestNode(t), newTestNode(t)
	for _, pair := range [][2]*Node{{a, hub}, {c, hub}, {a, c}} {
		if err := pair[0].Connect(ctx, addrInfo(pair[1])); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "a and hub know c in their routing tables", func() bool {
		return a.DHT().RoutingTable().Find(c.ID()) != "" && a.DHT().RoutingTable().Find(hub.ID()) != "" &&
			hub.DHT().RoutingTable().Find(c.ID()) != ""
	})
	_ = a.Host().Network().ClosePeer(c.ID())
	a.Host().Peerstore().ClearAddrs(c.ID())
	if a.DHT().RoutingTable().Find(c.ID()) == "" {
		t.Fatal("c left a's routing table on disconnect; the test would not exercise a stale entry")
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: c.ID()}); err != nil {
		t.Fatalf("connect by peer ID with a stale routing entry: %v", err)
	}
	if a.Host().Network().Connectedness(c.ID()) != network.Connected {
		t.Fatal("not connected after Connect")
	}
}

func TestConnectWithoutDHTNeedsAnAddress(t *testing.T) {
	a := newTestNode(t, func(c *config.Config) { c.Discovery.DHT = "off" })
	b := newTestNode(t)
	err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID()})
	if !errors.Is(err, ErrNoAddress) || !strings.Contains(err.Error(), "DHT is off") {
		t.Fatalf("got %v", err)
	}
}

func TestConnectByIDWithNoPeersToAsk(t *testing.T) {
	a, b := newTestNode(t), newTestNode(t)
	err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID()})
	if !errors.Is(err, ErrNoPeersToAsk) || !strings.Contains(err.Error(), "no peers to ask yet; connect by multiaddr first or set bootstrap peers") {
		t.Fatalf("got %v", err)
	}
}

// A warren node of another network is refused, naming both networks; a
// plain libp2p host (no /warren/ protocols) is not.
func TestConnectToAnotherNetwork(t *testing.T) {
	a := newTestNode(t) // network "warren"
	b := newTestNode(t, func(c *config.Config) { c.Network = "blue" })
	err := a.Connect(context.Background(), addrInfo(b))
	var one *OtherNetworkError
	if !errors.Is(err, ErrOtherNetwork) || !errors.As(err, &one) || one.Network != "blue" || one.Ours != "warren" ||
		!strings.Contains(err.Error(), `"blue"`) || !strings.Contains(err.Error(), `"warren"`) {
		t.Fatalf("got %v", err)
	}
	if a.Host().Network().Connectedness(b.ID()) == network.Connected {
		t.Error("still connected to the other network's peer")
	}
	c := newTestNode(t)
	if err := a.Connect(context.Background(), addrInfo(c)); err != nil {
		t.Fatalf("same network: %v", err)
	}
}

func addrInfo(n *Node) peer.AddrInfo {
	ai, err := peer.AddrInfoFromP2pAddr(n.Addrs()[0])
	if err != nil {
		panic(err)
	}
	return *ai
}

func TestSeparateNetworksUseSeparateDHTs(t *testing.T) {
	if DHTProtocolPrefix("a") == DHTProtocolPrefix("b") {
		t.Fatal("two networks share a DHT protocol")
	}
}

func TestParseTargetErrors(t *testing.T) {
	cases := map[string]string{
		"":                          "empty peer",
		"nonsense":                  `"nonsense"`,
		"/ip4/1.2.3.4/tcp/1":        "end in /p2p/",
		"/ip4/999.1.1.1/tcp/1/p2p/": "bad multiaddr",
	}
	for in, want := range cases {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTarget(%q) = %v, want error containing %q", in, err, want)
		}
	}
	if _, err := ParseTarget("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh7jHdxHPDHNZzuBFxLZ3Pf4pVjsB9RwQKNCjTuuZ"); err != nil {
		t.Errorf("good multiaddr: %v", err)
	}
	if _, err := ParsePeerID("Qm"); err == nil || !strings.Contains(err.Error(), `"Qm"`) {
		t.Errorf("ParsePeerID: %v", err)
	}
}

func TestPingValidates(t *testing.T) {
	a := newTestNode(t)
	if _, err := a.Ping(context.Background(), a.ID(), 1); err == nil {
		t.Error("ping self accepted")
	}
	if _, err := a.Ping(context.Background(), a.ID(), 0); err == nil {
		t.Error("count 0 accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Discovery.DHT = "maybe"
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	if _, err := New(context.Background(), cfg, key, Options{}); err == nil || !strings.Contains(err.Error(), "discovery.dht") {
		t.Fatalf("got %v", err)
	}
}
