package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/config"
)

// TestReachAPrivateNodeThroughARelay: A says it is behind NAT and reserves a
// slot on relay R; B, which never learns a direct address of A, connects to A
// by its circuit address and pings it over the relayed (limited) connection.
func TestReachAPrivateNodeThroughARelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// go-libp2p runs the relay service only on a node it believes public.
	r := newTestNode(t, func(c *config.Config) {
		c.Swarm.RelayService = true
		c.Swarm.Reachability = "public"
		c.Discovery.DHT = "off"
	})
	a := newTestNode(t, func(c *config.Config) {
		c.Discovery.DHT = "off"
		c.Swarm.RelayClient = true
		c.Swarm.Reachability = "private"
		c.Swarm.StaticRelays = []string{r.Addrs()[0].String()}
	})
	b := newTestNode(t, func(c *config.Config) { c.Discovery.DHT = "off"; c.Swarm.RelayClient = true })

	// B knows A only as "behind R": /ip4/<R>/tcp/<port>/p2p/<R>/p2p-circuit/p2p/<A>.
	// The dial succeeds once A's autorelay has made its reservation on R.
	relayed := connectViaRelay(t, ctx, b, r, a)
	if !isRelayed(relayed.RemoteMultiaddr()) {
		t.Fatalf("connection address %s is not a circuit", relayed.RemoteMultiaddr())
	}
	// A stream over the limited connection, as tunnels open them.
	const proto = "/x/relay-echo"
	a.Host().SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 5)
		if _, err := s.Read(buf); err == nil {
			_, _ = s.Write(buf)
		}
	})
	s, err := b.Host().NewStream(network.WithAllowLimitedConn(ctx, "test"), a.ID(), proto)
	if err != nil {
		t.Fatalf("stream over the relayed connection: %v", err)
	}
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := s.Read(got); err != nil || string(got) != "hello" {
		t.Fatalf("echo over relay: %q %v", got, err)
	}
	s.Close()
	if b.Host().Network().Connectedness(a.ID()) == network.NotConnected {
		t.Fatal("lost the relayed connection")
	}

	// Peers shows A on the relayed connection, then, once a direct one
	// exists beside it (as after a hole punch), on the direct one.
	peerOf := func() PeerInfo {
		for _, p := range b.Peers() {
			if p.ID == a.ID() {
				return p
			}
		}
		t.Fatalf("B's peers lack A: %+v", b.Peers())
		return PeerInfo{}
	}
	if p := peerOf(); !p.Limited || !strings.Contains(p.Addr.String(), "/p2p-circuit") {
		t.Fatalf("before a direct connection, A is listed as %+v", p)
	}
	direct := peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}
	if err := b.Host().Connect(network.WithForceDirectDial(ctx, "test"), direct); err != nil {
		t.Fatalf("direct connection beside the relayed one: %v", err)
	}
	if n := len(b.Host().Network().ConnsToPeer(a.ID())); n < 2 {
		t.Fatalf("B has %d connections to A, want the relayed and the direct one", n)
	}
	if p := peerOf(); p.Limited || strings.Contains(p.Addr.String(), "/p2p-circuit") {
		t.Fatalf("with a direct connection, A is listed as %+v", p)
	}
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
