package gossip

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/testutil"
)

// limitedHost is a loopback host whose resource manager gives the gossip
// service the per-peer limits servicePeer (libp2p's defaults elsewhere).
// Mocknet's hosts have no resource manager, so these tests need real ones.
func limitedHost(t *testing.T, servicePeer rcmgr.ResourceLimits) host.Host {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay()}
	if servicePeer != (rcmgr.ResourceLimits{}) {
		limits := rcmgr.PartialLimitConfig{ServicePeer: map[string]rcmgr.ResourceLimits{ServiceName: servicePeer}}
		rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, libp2p.ResourceManager(rm))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func connectLoopback(t *testing.T, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// serviceStat is what h's resource manager counts in the gossip service.
func serviceStat(t *testing.T, h host.Host) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	err := h.Network().ResourceManager().ViewService(ServiceName, func(s network.ServiceScope) error {
		st = s.Stat()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// gatherDirection reads warren_gossip_refused_streams_total{direction=dir}.
func gatherDirection(t *testing.T, reg *prometheus.Registry, dir string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warren_gossip_refused_streams_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "direction" && l.GetValue() == dir {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("warren_gossip_refused_streams_total{direction=%q} not gathered", dir)
	return 0
}

// pubsub's streams, both ways, join the gossip service; a stream over the
// service's per-peer limit is reset before pubsub reads it, and counted,
// while the peer's established stream keeps working.
func TestStreamsJoinTheGossipService(t *testing.T) {
	hb := limitedHost(t, rcmgr.ResourceLimits{StreamsInbound: 1, StreamsOutbound: 1})
	ha := limitedHost(t, rcmgr.ResourceLimits{})
	reg := prometheus.NewRegistry()
	a := newService(t, ha, Options{})
	b := newService(t, hb, Options{Registerer: reg})
	sub, err := b.Subscribe("s", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	connectLoopback(t, ha, hb)

	for name, h := range map[string]host.Host{"a": ha, "b": hb} {
		testutil.Eventually(t, 10*time.Second, "one gossip stream each way in "+name+"'s service scope", func() bool {
			st := serviceStat(t, h)
			return st.NumStreamsInbound == 1 && st.NumStreamsOutbound == 1
		})
	}

	// a second inbound gossip stream from a: over b's limit of 1.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := ha.NewStream(ctx, hb.ID(), b.protos[0])
	if err != nil {
		t.Fatal(err)
	}
	defer str.Reset()
	// A length prefix: libp2p negotiates lazily, with the first write.
	if _, err := str.Write([]byte{0x05}); err != nil {
		t.Fatal(err)
	}
	_ = str.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := str.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second inbound gossip stream: read = %v; expected a reset from the resource manager", err)
	}
	testutil.Eventually(t, 5*time.Second, "refusal counted", func() bool { in, _ := b.RefusedStreams(); return in == 1 })
	if in, out := b.RefusedStreams(); in != 1 || out != 0 {
		t.Fatalf("b.RefusedStreams() = %d, %d; expected 1, 0", in, out)
	}
	if got := gatherDirection(t, reg, DirInbound); got != 1 {
		t.Fatalf("warren_gossip_refused_streams_total{direction=inbound} = %v; expected 1", got)
	}
	if st := serviceStat(t, hb); st.NumStreamsInbound != 1 {
		t.Fatalf("b's gossip service has %d inbound streams; expected pubsub's 1", st.NumStreamsInbound)
	}

	// pubsub's own stream from a was not disturbed.
	if err := a.Publish(ctx, "s", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub, 10*time.Second); string(m.Data) != "still here" {
		t.Fatalf("got %q; expected %q", m.Data, "still here")
	}
}

// An outbound gossip stream the resource manager refuses is reset and
// counted: pubsub never writes to it.
func TestOutboundStreamRefusedByTheGossipService(t *testing.T) {
	hb := limitedHost(t, rcmgr.ResourceLimits{StreamsInbound: 1, StreamsOutbound: rcmgr.BlockAllLimit})
	ha := limitedHost(t, rcmgr.ResourceLimits{})
	reg := prometheus.NewRegistry()
	_ = newService(t, ha, Options{})
	b := newService(t, hb, Options{Registerer: reg})
	connectLoopback(t, ha, hb)

	testutil.Eventually(t, 10*time.Second, "b's outbound stream refused", func() bool { _, out := b.RefusedStreams(); return out >= 1 })
	if got := gatherDirection(t, reg, DirOutbound); got < 1 {
		t.Fatalf("warren_gossip_refused_streams_total{direction=outbound} = %v; expected at least 1", got)
	}
	// a's stream to b is in b's service; b has none to a.
	testutil.Eventually(t, 10*time.Second, "a's stream in b's service", func() bool { return serviceStat(t, hb).NumStreamsInbound == 1 })
	if st := serviceStat(t, hb); st.NumStreamsOutbound != 0 {
		t.Fatalf("b's gossip service has %d outbound streams; expected 0", st.NumStreamsOutbound)
	}
	testutil.Eventually(t, 5*time.Second, "no stream from b in a's service (b's was refused)", func() bool {
		return serviceStat(t, ha).NumStreamsInbound == 0
	})
}
