package gossip

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"

	"github.com/warren-p2p/warren/internal/testutil"
)

// loopbackHost is a real libp2p host on 127.0.0.1 with a server-mode DHT
// under a private protocol prefix.
func loopbackHost(t *testing.T) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/warren-test"))
	if err != nil {
		_ = h.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Close()
		_ = h.Close()
	})
	return h, d
}

// A publisher and a subscriber that each know only a third node (which
// runs the DHT but no gossip) deliver with no manual connection between
// them, and the subscriber's topic is findable in the DHT. (In a 3-node
// DHT the DHT's own queries may connect the two as well;
// TestRendezvousConnectsTopicMembers shows rendezvous alone does.)
func TestRendezvousThroughDHT(t *testing.T) {
	hub, hubDHT := loopbackHost(t)
	pubH, pubDHT := loopbackHost(t)
	subH, subDHT := loopbackHost(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hubInfo := peer.AddrInfo{ID: hub.ID(), Addrs: hub.Addrs()}
	for _, h := range []host.Host{pubH, subH} {
		if err := h.Connect(ctx, hubInfo); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*dht.IpfsDHT{hubDHT, pubDHT, subDHT} {
		testutil.Eventually(t, 10*time.Second, "DHT routing tables", func() bool { return d.RoutingTable().Size() > 0 })
	}

	pub := newService(t, pubH, Options{Discovery: drouting.NewRoutingDiscovery(pubDHT), PublishTimeout: 25 * time.Second})
	sub := newService(t, subH, Options{Discovery: drouting.NewRoutingDiscovery(subDHT)})

	s, err := sub.Subscribe("found", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "found", []byte("through the DHT")); err != nil {
		t.Fatal(err)
	}
	m := next(t, s, 10*time.Second)
	if string(m.Data) != "through the DHT" || m.From != pubH.ID() {
		t.Fatalf("got %q from %s; expected the publisher's message", m.Data, m.From)
	}

	// The subscriber is a provider of the topic's rendezvous namespace.
	testutil.Eventually(t, 10*time.Second, "the subscriber's provider record", func() bool {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		defer fcancel()
		ch, err := drouting.NewRoutingDiscovery(hubDHT).FindPeers(fctx, "floodsub:/warren/test/topic/found")
		if err != nil {
			return false
		}
		found := false
		for ai := range ch {
			found = found || ai.ID == subH.ID()
		}
		return found
	})
}

// memDiscovery is an in-memory rendezvous shared by several hosts.
type memDiscovery struct {
	mu    sync.Mutex
	peers map[string][]peer.AddrInfo // namespace → advertisers
}

// forHost is the Discovery one host uses.
func (d *memDiscovery) forHost(h host.Host) discovery.Discovery { return memDiscoveryHost{d, h} }

type memDiscoveryHost struct {
	d *memDiscovery
	h host.Host
}

func (m memDiscoveryHost) Advertise(_ context.Context, ns string, _ ...discovery.Option) (time.Duration, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	m.d.peers[ns] = append(m.d.peers[ns], peer.AddrInfo{ID: m.h.ID(), Addrs: m.h.Addrs()})
	return time.Hour, nil
}

func (m memDiscoveryHost) FindPeers(_ context.Context, ns string, _ ...discovery.Option) (<-chan peer.AddrInfo, error) {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	ch := make(chan peer.AddrInfo, len(m.d.peers[ns]))
	for _, ai := range m.d.peers[ns] {
		if ai.ID != m.h.ID() {
			ch <- ai
		}
	}
	close(ch)
	return ch, nil
}

func (d *memDiscovery) namespaces() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for ns := range d.peers {
		out = append(out, ns)
	}
	return out
}

// Two hosts with no connection at all: joining the topic advertises it
// under the network's namespace, and the publisher dials the subscriber it
// finds there.
func TestRendezvousConnectsTopicMembers(t *testing.T) {
	mn, hs := newMocknet(t, 2) // linked (dialable), not connected
	disc := &memDiscovery{peers: make(map[string][]peer.AddrInfo)}
	pub := newService(t, hs[0], Options{Discovery: disc.forHost(hs[0])})
	sub := newService(t, hs[1], Options{Discovery: disc.forHost(hs[1])})
	s, err := sub.Subscribe("found", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the subscriber's advertisement", func() bool { return len(disc.namespaces()) > 0 })
	if ns := disc.namespaces(); len(ns) != 1 || ns[0] != "floodsub:/warren/test/topic/found" {
		t.Fatalf("advertised %q; expected only the network's namespace for the topic", ns)
	}
	if len(mn.Net(hs[0].ID()).Peers()) != 0 {
		t.Fatal("hosts connected before publishing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, "found", []byte("via rendezvous")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, s, 5*time.Second); string(m.Data) != "via rendezvous" {
		t.Fatalf("got %q", m.Data)
	}
}
