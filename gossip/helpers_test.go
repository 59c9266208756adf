package gossip

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// newMocknet returns n in-memory hosts with Ed25519 keys (warren's key
// type), all linked (able to dial) but not connected.
func newMocknet(tb testing.TB, n int) (mocknet.Mocknet, []host.Host) {
	tb.Helper()
	mn := mocknet.New()
	tb.Cleanup(func() { _ = mn.Close() })
	hosts := make([]host.Host, n)
	for i := range hosts {
		sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		// Mocknet never opens a socket; the address is only a label.
		addr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 20000+i))
		h, err := mn.AddPeer(sk, addr)
		if err != nil {
			tb.Fatal(err)
		}
		hosts[i] = h
	}
	if err := mn.LinkAll(); err != nil {
		tb.Fatal(err)
	}
	return mn, hosts
}

func connect(tb testing.TB, mn mocknet.Mocknet, a, b host.Host) {
	tb.Helper()
	if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
		tb.Fatalf("connect %s to %s: %v", a.ID(), b.ID(), err)
	}
}

// newService starts a Service and closes it when the test ends.
func newService(tb testing.TB, h host.Host, opts Options) *Service {
	tb.Helper()
	if opts.Network == "" {
		opts.Network = "test"
	}
	s, err := New(context.Background(), h, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// next reads one message or fails the test.
func next(tb testing.TB, sub *Subscription, timeout time.Duration) *Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil {
		tb.Fatalf("subscription to %q: %v", sub.Topic(), err)
	}
	return m
}

// expectNothing fails the test if sub yields a message within d.
func expectNothing(tb testing.TB, sub *Subscription, d time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := sub.Next(ctx); err == nil {
		tb.Fatalf("subscription to %q got %q from %s; expected nothing", sub.Topic(), m.Data, m.From)
	}
}

func topicInfo(tb testing.TB, s *Service, name string) TopicInfo {
	tb.Helper()
	for _, ti := range s.Topics() {
		if ti.Name == name {
			return ti
		}
	}
	tb.Fatalf("topic %q not in Topics()", name)
	return TopicInfo{}
}
