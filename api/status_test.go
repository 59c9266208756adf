package api

import (
	"context"
	"testing"
	"time"
)

// GET /v1/status answers the node's reachability, addresses and peers: on
// the test profile (AutoNAT, port mapping and relays off) it says unknown,
// port mapping off, and lists the connected peer as direct over TCP.
func TestStatusRoute(t *testing.T) {
	p := newMsgPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != p.a.ID().String() || st.Network != p.a.Config().Network || st.PublicNetwork {
		t.Errorf("identity: %+v", st)
	}
	if st.Reachability != "unknown" || st.ReachabilitySource != "none" {
		t.Errorf("reachability %q from %q, want unknown from none", st.Reachability, st.ReachabilitySource)
	}
	if st.PortMapping.State != "off" || st.PortMapping.Mapped == nil || st.Relays == nil || st.HolePunch.Recent == nil || st.NATTypes == nil {
		t.Errorf("port mapping %+v, relays %v, recent %v: want off and empty lists, not null", st.PortMapping, st.Relays, st.HolePunch.Recent)
	}
	if len(st.ListenAddrs) == 0 || len(st.AnnouncedAddrs) == 0 {
		t.Errorf("no addresses: %+v", st)
	}
	if len(st.Peers) != 1 || st.Peers[0].ID != p.b.ID().String() || !st.Peers[0].Direct || st.Peers[0].Transport != "tcp" {
		t.Errorf("peers %+v: want B, direct over tcp", st.Peers)
	}
}
