package warren_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/gossip"
)

// TestGossipServiceLimitsWired: a node's gossip streams join the
// warren.gossip resource-manager service, whose limits the node sets from
// its config (ServiceStreamsPerPeer per connection, at most max_streams).
func TestGossipServiceLimitsWired(t *testing.T) {
	a, b := newNode(t, ""), newNode(t, "")
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.ForProfile(config.ProfileTest)
	rm := cfg.Swarm.ResourceManager
	want := min(rm.MaxStreams, gossip.ServiceStreamsPerPeer*rm.MaxConns)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st network.ScopeStat
		var in, out int
		err := a.Host().Network().ResourceManager().ViewService(gossip.ServiceName, func(s network.ServiceScope) error {
			st = s.Stat()
			l := s.(rcmgr.ResourceScopeLimiter).Limit()
			in, out = l.GetStreamLimit(network.DirInbound), l.GetStreamLimit(network.DirOutbound)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if in != want || out != want {
			t.Fatalf("gossip service stream limits = %d in, %d out; expected %d each", in, out, want)
		}
		if st.NumStreamsInbound == 1 && st.NumStreamsOutbound == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gossip service holds %d inbound, %d outbound streams; expected 1 each (b's and a's)",
				st.NumStreamsInbound, st.NumStreamsOutbound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
