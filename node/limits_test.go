package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/warren-p2p/warren/config"
)

// A service's limits are enforced by the resource manager: inbound streams
// and memory per peer, memory over all peers. A stream may hold all the
// memory its service allows a peer, even beyond libp2p's 16 MiB per stream.
func TestServiceLimitsEnforced(t *testing.T) {
	const svc = "test.svc"
	rm, err := resourceManager(config.Default().Swarm.ResourceManager, []ServiceLimit{{
		Name: svc, Memory: 96 << 20,
		PeerStreamsInbound: 3, PeerStreamsOutbound: 3, PeerMemory: 40 << 20, StreamMemory: 40 << 20,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rm.Close() })
	open := func(p peer.ID) (network.StreamManagementScope, error) {
		t.Helper()
		s, err := rm.OpenStream(p, network.DirInbound)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Done)
		if err := s.SetProtocol(protocol.ID("/test/1")); err != nil {
			t.Fatal(err)
		}
		return s, s.SetService(svc)
	}
	var first network.StreamManagementScope
	for i := range 3 {
		s, err := open("peerA")
		if err != nil {
			t.Fatalf("stream %d of 3 refused: %v", i+1, err)
		}
		if first == nil {
			first = s
		}
	}
	if _, err := open("peerA"); err == nil {
		t.Fatal("a 4th inbound stream of one peer joined the service")
	}
	if _, err := open("peerB"); err != nil {
		t.Fatalf("another peer's stream refused: %v", err)
	}
	// 32 MiB on one stream: over libp2p's default stream memory, within the peer's.
	if err := first.ReserveMemory(32<<20, network.ReservationPriorityAlways); err != nil {
		t.Fatalf("reserve within the peer limit: %v", err)
	}
	if err := first.ReserveMemory(16<<20, network.ReservationPriorityAlways); err == nil {
		t.Fatal("reservation beyond the peer's 40 MiB accepted")
	}
	// The service total (96 MiB) binds across peers.
	var got int64 = 32 << 20
	for i := range 4 {
		s, err := open(peer.ID("peer" + string(rune('C'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if s.ReserveMemory(32<<20, network.ReservationPriorityAlways) == nil {
			got += 32 << 20
		}
	}
	if got > 96<<20 {
		t.Fatalf("service holds %d MiB, over its 96 MiB", got>>20)
	}
	if got < 96<<20 {
		t.Fatalf("service holds %d MiB, want all 96 MiB usable", got>>20)
	}
}

func TestServiceLimitsRejectBadInput(t *testing.T) {
	c := config.Default().Swarm.ResourceManager
	for _, sl := range [][]ServiceLimit{
		{{Name: ""}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", PeerMemory: -1}},
	} {
		if _, err := resourceManager(c, sl); err == nil {
			t.Errorf("accepted %+v", sl)
		}
	}
}
