package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warren-p2p/warren/config"
)

// A node behind a (forced) NAT holds a reservation on relay R: its status
// names R with the circuit address and an expiry about an hour away, says
// private as configured, and B, reaching A through R, lists A as relayed
// with bytes counted both ways.
func TestStatusShowsRelayReservationAndRelayedPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := newTestNode(t, func(c *config.Config) {
		c.Swarm.RelayService, c.Swarm.Reachability, c.Discovery.DHT = true, "public", "off"
	})
	a := newTestNode(t, func(c *config.Config) {
		c.Discovery.DHT, c.Swarm.RelayClient, c.Swarm.Reachability = "off", true, "private"
		c.Swarm.StaticRelays = []string{r.Addrs()[0].String()}
	})
	b := newTestNode(t, func(c *config.Config) { c.Discovery.DHT = "off"; c.Swarm.RelayClient = true })

	var st Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		st = a.Status()
		if len(st.Relays) == 1 && !st.Relays[0].Expires.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's status never showed its reservation on R: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rv := st.Relays[0]
	if rv.Relay != r.ID() || len(rv.Addrs) == 0 || !strings.Contains(rv.Addrs[0].String(), "/p2p/"+r.ID().String()+"/p2p-circuit") {
		t.Errorf("reservation %+v: want relay %s with its circuit address", rv, r.ID())
	}
	if left := time.Until(rv.Expires); left < 50*time.Minute || left > 61*time.Minute {
		t.Errorf("reservation expires in %v, want about libp2p's hour", left)
	}
	if st.Reachability != "private" || st.ReachabilitySource != "config" {
		t.Errorf("reachability %q from %q, want private from config", st.Reachability, st.ReachabilitySource)
	}
	if st.PortMapping.State != "off" || st.PortMapping.Enabled {
		t.Errorf("port mapping %+v with nat_port_map off", st.PortMapping)
	}
	if len(st.ObservedAddrs) == 0 || len(st.ListenAddrs) == 0 {
		t.Errorf("no observed or listen addresses: %+v", st)
	}
	if rs := r.Status(); rs.Reachability != "public" || len(rs.Relays) != 0 {
		t.Errorf("relay's own status: %+v", rs)
	}

	connectViaRelay(t, ctx, b, r, a)
	// R keeps libp2p's default relay limits (128 KiB): too small for a tunnel.
	if err := b.RelayedOK(a.ID()); !errors.Is(err, ErrRelayTooSmall) || !errors.Is(err, ErrUnreachable) ||
		strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "relay "+r.ID().String()+", which cuts each connection after 131072 bytes") ||
		!strings.Contains(err.Error(), "Fix: run a relay of your own") {
		t.Errorf("RelayedOK over a 128 KiB relay: %v", err)
	}
	if err := r.RelayedOK(a.ID()); err != nil {
		t.Errorf("RelayedOK over a direct connection: %v", err)
	}
	const proto = "/x/status-echo"
	a.Host().SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 5)
		if _, err := s.Read(buf); err == nil {
			_, _ = s.Write(buf)
		}
	})
	s, err := b.Host().NewStream(network.WithAllowLimitedConn(ctx, "test"), a.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := s.Read(got); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Stream bytes are counted as they are read and written.
	var pa PeerInfo
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && pa.BytesIn == 0; time.Sleep(100 * time.Millisecond) {
		for _, p := range b.Status().Peers {
			if p.ID == a.ID() {
				pa = p
			}
		}
	}
	if pa.Direct || pa.Transport != "circuit" || pa.BytesIn == 0 || pa.BytesOut == 0 {
		t.Errorf("B lists A as %+v, want relayed (circuit) with bytes both ways", pa)
	}
	// Disconnect closes a relayed (limited) connection too.
	if err := b.Disconnect(a.ID()); err != nil || b.Host().Network().Connectedness(a.ID()) == network.Limited {
		t.Errorf("disconnect from a peer reached through a relay: %v", err)
	}
	for _, p := range b.Status().Peers {
		if p.ID == r.ID() && (!p.Direct || p.Transport != "tcp") {
			t.Errorf("B lists R as %+v, want direct tcp", p)
		}
	}
}

// The hole-punch tracer counts attempts by outcome, in the status and in
// warren_holepunch_total, keeps the newest few, and remembers each peer's
// last outcome in a bounded table.
func TestHolePunchTracerCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := newStatusTracker(reg)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := peer.ID("p1"), peer.ID("p2")
	now := time.Now()
	st.Trace(&holepunch.Event{Remote: p1, Timestamp: now.UnixNano(), Type: holepunch.EndHolePunchEvtT,
		Evt: &holepunch.EndHolePunchEvt{Success: false, Error: "all dials failed", EllapsedTime: time.Second}})
	st.Trace(&holepunch.Event{Remote: p1, Timestamp: now.UnixNano() + 1, Type: holepunch.EndHolePunchEvtT,
		Evt: &holepunch.EndHolePunchEvt{Success: true, EllapsedTime: 20 * time.Millisecond}})
	st.Trace(&holepunch.Event{Remote: p2, Timestamp: now.UnixNano() + 2, Type: holepunch.ProtocolErrorEvtT,
		Evt: &holepunch.ProtocolErrorEvt{Error: "stream reset"}})
	st.Trace(&holepunch.Event{Remote: p2, Type: holepunch.StartHolePunchEvtT, Evt: &holepunch.StartHolePunchEvt{}})
	if st.hp.Attempts != 3 || st.hp.Successes != 1 || st.hp.Failures != 2 {
		t.Fatalf("counts %+v", st.hp)
	}
	if got := counterValue(t, st.punches.WithLabelValues("failure")); got != 2 {
		t.Errorf("warren_holepunch_total{outcome=failure} = %v", got)
	}
	if got := counterValue(t, st.punches.WithLabelValues("success")); got != 1 {
		t.Errorf("warren_holepunch_total{outcome=success} = %v", got)
	}
	if r := st.hp.Recent; len(r) != 3 || r[0].Peer != p2 || r[1].Peer != p1 || !r[1].Success {
		t.Errorf("recent %+v: want newest first", r)
	}
	if a, ok := st.lastHolePunch(p1); !ok || !a.Success {
		t.Errorf("last punch with p1: %+v %v", a, ok)
	}
	for i := range 3 * maxPunchPeers {
		st.Trace(&holepunch.Event{Remote: peer.ID(strings.Repeat("x", i+1)), Timestamp: now.UnixNano() + int64(i) + 10,
			Evt: &holepunch.EndHolePunchEvt{Error: "x"}})
	}
	if len(st.hp.Recent) != maxRecentPunches || len(st.lastPunch) != maxPunchPeers {
		t.Errorf("kept %d recent and %d peers, want at most %d and %d", len(st.hp.Recent), len(st.lastPunch), maxRecentPunches, maxPunchPeers)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
