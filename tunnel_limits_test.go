package warren_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren/tunnel"
)

// TestTunnelServiceLimitsWired: tunnel streams join the warren.tunnel
// resource-manager service, whose per-peer limits the node must raise for
// tunnels (one stream per tunnelled connection). With libp2p's default
// service-peer limits, a peer stops getting streams after about 128.
func TestTunnelServiceLimitsWired(t *testing.T) {
	const n = 400
	a, b := newNode(t, ""), newNode(t, "")
	defer a.Close()
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	target := "/ip4/127.0.0.1/tcp/" + portOf(t, ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := b.Tunnels().Listen(ctx, tunnel.ListenSpec{Protocol: "/x/many", Target: ma.StringCast(target), MaxConns: 2 * n}); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	var streams []network.Stream
	defer func() {
		for _, s := range streams {
			_ = s.Reset()
		}
	}()
	for i := range n {
		s, err := a.Host().NewStream(ctx, b.ID(), "/x/many")
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		streams = append(streams, s)
		_ = s.SetDeadline(time.Now().Add(20 * time.Second))
		buf := []byte{'x'}
		if _, err := s.Write(buf); err != nil {
			t.Fatalf("stream %d: write: %v", i+1, err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatalf("stream %d of %d refused: %v", i+1, n, err)
		}
	}
}

func portOf(t *testing.T, a net.Addr) string {
	t.Helper()
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
