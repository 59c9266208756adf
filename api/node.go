package api

// Handlers of the node's own routes: health, identity, peers, ping.

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multiaddr"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/node"
)

// maxPings bounds the count of one ping call.
const maxPings = 1000

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, client.Health{Status: "ok", ID: s.node.ID().String(),
		Peers: len(s.node.Host().Network().Peers()), UptimeS: time.Since(s.started).Seconds()})
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	pub, _ := crypto.MarshalPublicKey(s.node.Host().Peerstore().PubKey(s.node.ID()))
	writeJSON(w, http.StatusOK, client.IDInfo{
		ID: s.node.ID().String(), Addrs: addrStrings(s.node.Addrs()), Network: s.node.Config().Network,
		PublicKey: base64.StdEncoding.EncodeToString(pub), Agent: "warren/" + warren.Version,
	})
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	ps := s.node.Peers()
	out := make([]client.PeerInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, peerInfo(p))
	}
	writeJSON(w, http.StatusOK, out)
}

// peerInfo is the wire form of a node.PeerInfo.
func peerInfo(p node.PeerInfo) client.PeerInfo {
	return client.PeerInfo{ID: p.ID.String(), Addr: p.Addr.String(), Direction: p.Direction, Limited: p.Limited,
		Streams: p.Streams, LatencyMS: p.LatencyMS, Direct: p.Direct, Transport: p.Transport,
		BytesIn: p.BytesIn, BytesOut: p.BytesOut}
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	var req client.ConnectRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	ai, err := node.ParseTarget(req.Addr)
	if err != nil {
		writeError(w, invalid(err))
		return
	}
	if err := s.node.Connect(r.Context(), ai); err != nil {
		writeError(w, orElse(client.CodeUnreachable, err))
		return
	}
	addrs := addrStrings(s.node.Host().Peerstore().Addrs(ai.ID))
	writeJSON(w, http.StatusOK, client.ConnectResult{ID: ai.ID.String(), Addrs: addrs})
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	var req client.DisconnectRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	p, err := node.ParsePeerID(req.Peer)
	if err != nil {
		writeError(w, invalid(err))
		return
	}
	if err := s.node.Disconnect(p); err != nil {
		writeError(w, withCode(client.CodeNotFound, err))
		return
	}
	writeJSON(w, http.StatusOK, client.Empty{})
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	var req client.PingRequest
	if !s.readBody(w, r, controlLimit, "docs/api.md", &req) {
		return
	}
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > maxPings {
		writeError(w, invalidf("ping count %d: expected 1 to %d", req.Count, maxPings))
		return
	}
	p, err := node.ParsePeerID(req.Peer)
	if err != nil {
		writeError(w, invalid(err))
		return
	}
	rtts, err := s.node.Ping(r.Context(), p, req.Count)
	if err != nil {
		writeError(w, orElse(client.CodeUnreachable, err))
		return
	}
	res := client.PingResult{Peer: p.String(), RTTMS: make([]float64, 0, len(rtts))}
	var sum float64
	for _, d := range rtts {
		ms := float64(d.Microseconds()) / 1000
		res.RTTMS = append(res.RTTMS, ms)
		sum += ms
	}
	if len(rtts) > 0 {
		res.AvgMS = sum / float64(len(rtts))
	}
	writeJSON(w, http.StatusOK, res)
}

// addrStrings is the wire form of multiaddrs (never nil: [] in JSON).
func addrStrings(as []multiaddr.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// nonNil makes a nil slice an empty one, so that it is [] in JSON.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
