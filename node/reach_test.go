package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/warren-p2p/warren/config"
)

// connectViaRelay connects n to a only through relay r (a holds a
// reservation on r), retrying while a's reservation is not made yet, and
// returns the relayed connection.
func connectViaRelay(t *testing.T, ctx context.Context, n, r, a *Node) network.Conn {
	t.Helper()
	circuit := r.Addrs()[0].String() + "/p2p-circuit/p2p/" + a.ID().String()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := connectTarget(cctx, n, circuit)
		ccancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect through the relay: %v", err)
		}
		if sw, ok := n.Host().Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			sw.Backoff().Clear(a.ID())
		}
		time.Sleep(100 * time.Millisecond)
	}
	conns := n.Host().Network().ConnsToPeer(a.ID())
	if len(conns) != 1 || !conns[0].Stat().Limited {
		t.Fatalf("%s's connections to a: %v, want one relayed", n.ID(), conns)
	}
	return conns[0]
}

// relayWorld is relay R (with the given swarm.relay_limit) and A behind it (private,
// holding a reservation, hole punching off: it would be the one to punch,
// so no hole punch ever comes).
func relayWorld(t *testing.T, limit config.RelayLimit) (r, a *Node) {
	t.Helper()
	r = newTestNode(t, func(c *config.Config) {
		c.Swarm.RelayService, c.Swarm.Reachability, c.Discovery.DHT = true, "public", "off"
		c.Swarm.RelayLimit = limit
	})
	a = newTestNode(t, func(c *config.Config) {
		c.Discovery.DHT, c.Swarm.RelayClient, c.Swarm.Reachability = "off", true, "private"
		c.Swarm.StaticRelays = []string{r.Addrs()[0].String()}
	})
	return r, a
}

// waiter is a node that reaches A: hole punching on (so it waits for one)
// with the given tunnels.direct_wait.
func waiter(t *testing.T, wait time.Duration) *Node {
	t.Helper()
	return newTestNode(t, func(c *config.Config) {
		c.Discovery.DHT, c.Swarm.RelayClient, c.Swarm.HolePunching = "off", true, true
		c.Tunnels.DirectWait = config.Duration(wait)
	})
}

// Over a relay with public limits (128 KiB), Reach waits for a hole punch
// until the relayed connection is direct_wait old, then refuses the relay
// with the one-line error; a second Reach on the same connection does not
// wait again; a short deadline cuts the wait to half of it and still says
// why; a direct connection ends the wait at once.
func TestReachWaitsForAHolePunchThenRefusesASmallRelay(t *testing.T) {
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, a := relayWorld(t, config.RelayLimit{Duration: config.Duration(2 * time.Minute), Data: 128 << 10})

	const wait = 2 * time.Second
	b := waiter(t, wait)
	if got := b.DirectWait(); got != wait {
		t.Fatalf("DirectWait %v, want %v", got, wait)
	}
	c := connectViaRelay(t, ctx, b, r, a)
	err := b.Reach(ctx, a.ID())
	waited := time.Since(c.Stat().Opened)
	if !errors.Is(err, ErrRelayTooSmall) || !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "cannot reach peer "+a.ID().String()) ||
		!strings.Contains(err.Error(), "relay "+r.ID().String()+", which cuts each connection after 131072 bytes") ||
		!strings.Contains(err.Error(), "Fix: run a relay of your own") {
		t.Fatalf("Reach over a 128 KiB relay: %v", err)
	}
	if waited < wait {
		t.Errorf("Reach gave up %v after the relayed connection opened, before tunnels.direct_wait (%v)", waited, wait)
	}
	// The same relayed connection had its chance: no second wait.
	start := time.Now()
	if err := b.Reach(ctx, a.ID()); !errors.Is(err, ErrRelayTooSmall) {
		t.Fatalf("second Reach: %v", err)
	}
	if took := time.Since(start); took >= wait {
		t.Errorf("the second Reach waited again (%v)", took)
	}

	// A long direct_wait and a 2 s deadline: the wait ends halfway, with
	// the relay's error rather than the deadline's.
	b2 := waiter(t, time.Minute)
	connectViaRelay(t, ctx, b2, r, a)
	start = time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	err = b2.Reach(dctx, a.ID())
	dcancel()
	if took := time.Since(start); !errors.Is(err, ErrRelayTooSmall) || errors.Is(err, context.DeadlineExceeded) || took > 1900*time.Millisecond {
		t.Errorf("Reach with a 2 s deadline: %v after %v, want the relay's error at about 1 s", err, took)
	}

	// A direct connection ends the wait: Reach then succeeds.
	b3 := waiter(t, time.Minute)
	connectViaRelay(t, ctx, b3, r, a)
	done := make(chan error, 1)
	go func() { done <- b3.Reach(ctx, a.ID()) }()
	time.Sleep(200 * time.Millisecond) // let it start waiting (a race only weakens the test)
	if err := b3.Host().Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Reach once a direct connection came: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a direct connection did not end Reach's wait")
	}
}

// A relay of your own without a data limit carries data: Reach accepts it
// (after the wait for a hole punch), and without hole punching it does not
// wait at all.
func TestReachAcceptsARelayOfYourOwn(t *testing.T) {
	verifyNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, a := relayWorld(t, config.RelayLimit{Duration: config.Duration(2 * time.Minute)})
	b := waiter(t, time.Second)
	c := connectViaRelay(t, ctx, b, r, a)
	if err := b.Reach(ctx, a.ID()); err != nil {
		t.Fatalf("Reach over an unlimited relay: %v", err)
	}
	if waited := time.Since(c.Stat().Opened); waited < time.Second {
		t.Errorf("Reach did not wait for a hole punch: %v", waited)
	}
	if n := len(b.Host().Network().ConnsToPeer(a.ID())); n != 1 {
		t.Errorf("%d connections to a, want the relayed one", n)
	}
	// Hole punching off: nothing to wait for.
	b2 := newTestNode(t, func(c *config.Config) { c.Discovery.DHT, c.Swarm.RelayClient = "off", true })
	if b2.DirectWait() != 0 {
		t.Fatalf("DirectWait %v with hole punching off", b2.DirectWait())
	}
	connectViaRelay(t, ctx, b2, r, a)
	start := time.Now()
	if err := b2.Reach(ctx, a.ID()); err != nil {
		t.Fatalf("Reach without hole punching: %v", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Reach waited %v with hole punching off", took)
	}
}
