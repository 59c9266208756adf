package warren_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
)

func newNodeWith(t *testing.T, edit func(*config.Config)) *warren.Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	cfg.Discovery.DHT = "off"
	edit(&cfg)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// behindRelay starts relay R with the given limit and A, private with a
// reservation on R and hole punching off (so no hole punch ever comes),
// and returns A's circuit address through R.
func behindRelay(t *testing.T, limit config.RelayLimit) (r, a *warren.Node, circuit peer.AddrInfo) {
	t.Helper()
	r = newNodeWith(t, func(c *config.Config) {
		c.Swarm.RelayService, c.Swarm.Reachability, c.Swarm.RelayLimit = true, "public", limit
	})
	a = newNodeWith(t, func(c *config.Config) {
		c.Swarm.RelayClient, c.Swarm.Reachability = true, "private"
		c.Swarm.StaticRelays = []string{r.Addrs()[0].String() + "/p2p/" + r.ID().String()}
	})
	circuit = peer.AddrInfo{ID: a.ID(), Addrs: []multiaddr.Multiaddr{
		multiaddr.StringCast(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")}}
	return r, a, circuit
}

// connectRelayed connects b to A's circuit address, retrying until A's
// reservation is made.
func connectRelayed(t *testing.T, ctx context.Context, b *warren.Node, circuit peer.AddrInfo) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := b.Connect(cctx, circuit)
		ccancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect through the relay: %v", err)
		}
		if sw, ok := b.Host().Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(circuit.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sender reaches A: hole punching on, with a short tunnels.direct_wait.
func sender(t *testing.T) *warren.Node {
	return newNodeWith(t, func(c *config.Config) {
		c.Swarm.RelayClient, c.Swarm.HolePunching = true, true
		c.Tunnels.DirectWait = config.Duration(500 * time.Millisecond)
	})
}

// Direct messages to a peer reachable only through a relay: over a relay
// with public limits (128 KiB) Send and Request fail, after the wait for a
// hole punch, with node's one-line error (ErrRelayTooSmall); over a relay
// of your own without a data limit both work, the reply coming back over
// the relayed connection the request came on.
func TestMessagesOverARelay(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) }) // after the nodes' Close
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	_, a, circuit := behindRelay(t, config.RelayLimit{Duration: config.Duration(2 * time.Minute), Data: 128 << 10})
	b := sender(t)
	connectRelayed(t, ctx, b, circuit)
	start := time.Now()
	err := b.Msg().Send(ctx, a.ID(), "chat", []byte("hello"), msg.SendOptions{})
	if !errors.Is(err, node.ErrRelayTooSmall) || !errors.Is(err, node.ErrUnreachable) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "cannot reach peer "+a.ID().String()) || !strings.Contains(err.Error(), "Fix: run a relay of your own") {
		t.Fatalf("Send over a 128 KiB relay: %v", err)
	}
	t.Logf("Send over a 128 KiB relay failed after %v: %v", time.Since(start), err)
	if _, err := b.Msg().Request(ctx, a.ID(), "up", []byte("hello")); !errors.Is(err, node.ErrRelayTooSmall) {
		t.Fatalf("Request over a 128 KiB relay: %v", err)
	}

	_, a2, circuit2 := behindRelay(t, config.RelayLimit{Duration: config.Duration(2 * time.Minute)})
	sub, err := a2.Msg().Subscribe("chat", msg.SubscribeOptions{Buffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	reg, err := a2.Msg().Handle("up", func(_ context.Context, m *msg.Message) ([]byte, error) {
		return []byte(strings.ToUpper(string(m.Payload))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	b2 := sender(t)
	connectRelayed(t, ctx, b2, circuit2)
	if err := b2.Msg().Send(ctx, a2.ID(), "chat", []byte("hello"), msg.SendOptions{}); err != nil {
		t.Fatalf("Send over your own relay: %v", err)
	}
	m, err := sub.Next(ctx)
	if err != nil || string(m.Payload) != "hello" || m.From != b2.ID() {
		t.Fatalf("received %v, %v", m, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	rep, err := b2.Msg().Request(rctx, a2.ID(), "up", []byte("hello"))
	if err != nil || string(rep.Payload) != "HELLO" {
		t.Fatalf("Request over your own relay: %v, %v", rep, err)
	}
	for _, c := range b2.Host().Network().ConnsToPeer(a2.ID()) {
		if !c.Stat().Limited {
			t.Fatalf("b2 reached a2 directly (%s): the test proves nothing", c.RemoteMultiaddr())
		}
	}
}
