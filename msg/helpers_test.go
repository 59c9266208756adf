package msg

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

func newHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		tb.Fatalf("libp2p.New: %v", err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func connect(tb testing.TB, a, b host.Host) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		tb.Fatalf("connect: %v", err)
	}
}

func newService(tb testing.TB, h host.Host, opts Options) *Service {
	tb.Helper()
	s, err := New(context.Background(), h, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// pair returns two connected services on loopback hosts.
func pair(tb testing.TB, opts Options) (a, b *Service) {
	tb.Helper()
	ha, hb := newHost(tb), newHost(tb)
	connect(tb, ha, hb)
	return newService(tb, ha, opts), newService(tb, hb, opts)
}

func ctxT(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// waitingForRoom is how many deliveries to sub (Block) wait for room.
func (sub *Subscription) waitingForRoom() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.blocked
}
