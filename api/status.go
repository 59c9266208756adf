package api

// GET /v1/status: why this node can or cannot be reached.

import (
	"net/http"
	"time"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/node"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statusInfo(s.node.Status(), s.node.ID().String(),
		s.node.Config().Network, time.Since(s.started)))
}

// statusInfo is the wire form of a node.Status.
func statusInfo(st node.Status, id, network string, uptime time.Duration) client.Status {
	out := client.Status{
		ID: id, Agent: "warren/" + warren.Version, Version: warren.Version, Network: network,
		UptimeS: uptime.Seconds(), PublicNetwork: st.PublicNetwork,
		Reachability: st.Reachability, ReachabilitySource: st.ReachabilitySource,
		NATTypes:       st.NATTypes,
		ListenAddrs:    addrStrings(st.ListenAddrs),
		AnnouncedAddrs: addrStrings(st.AnnouncedAddrs),
		ObservedAddrs:  addrStrings(st.ObservedAddrs),
		PortMapping: client.PortMapping{Enabled: st.PortMapping.Enabled, State: st.PortMapping.State,
			Mapped: addrStrings(st.PortMapping.Mapped), Error: st.PortMapping.Error},
		Relays: make([]client.RelayReservation, 0, len(st.Relays)),
		HolePunch: client.HolePunchStats{Attempts: st.HolePunch.Attempts, Successes: st.HolePunch.Successes,
			Failures: st.HolePunch.Failures, Recent: make([]client.HolePunchAttempt, 0, len(st.HolePunch.Recent))},
		Peers: make([]client.PeerInfo, 0, len(st.Peers)),
	}
	if out.NATTypes == nil {
		out.NATTypes = map[string]string{}
	}
	for _, r := range st.Relays {
		out.Relays = append(out.Relays, client.RelayReservation{Relay: r.Relay.String(), Addrs: addrStrings(r.Addrs), Expires: r.Expires})
	}
	for _, a := range st.HolePunch.Recent {
		outcome := "failure"
		if a.Success {
			outcome = "success"
		}
		out.HolePunch.Recent = append(out.HolePunch.Recent, client.HolePunchAttempt{Peer: a.Peer.String(), Time: a.Time,
			Outcome: outcome, Error: a.Error, DurationMS: float64(a.Duration) / float64(time.Millisecond)})
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, peerInfo(p))
	}
	return out
}
