package api

// Handlers of tunnels (package tunnel): listen, forward, list, close, and
// the tunnelled connections. docs/api-tunnel.md is the reference of these
// endpoints.

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

func (s *Server) tunnelRoutes() []route {
	// Opening a tunnel: a bad spec or address, a tunnel or port taken, the
	// daemon shutting down, the request cancelled, or the state file.
	open := with(bodyCodes, client.CodeConflict, client.CodeUnavailable, client.CodeTimeout, client.CodeInternal)
	return []route{
		{pattern: "GET /v1/tunnels", h: s.tunnelList, codes: []string{client.CodeInvalidArgument}},
		{pattern: "POST /v1/tunnels/listen", h: s.tunnelListen, codes: open},
		{pattern: "POST /v1/tunnels/forward", h: s.tunnelForward, codes: open},
		{pattern: "POST /v1/tunnels/close", h: s.tunnelClose, codes: with(bodyCodes, client.CodeUnavailable, client.CodeInternal)},
		{pattern: "GET /v1/tunnels/streams", h: s.tunnelStreams, codes: []string{client.CodeInvalidArgument}},
		{pattern: "POST /v1/tunnels/streams/close", h: s.tunnelStreamClose, codes: with(bodyCodes, client.CodeNotFound)},
	}
}

// tunnelInfo is the wire form of a tunnel.Info.
func tunnelInfo(t tunnel.Info) client.TunnelInfo {
	return client.TunnelInfo{ID: t.ID, Kind: t.Kind, Transport: t.Transport, Protocol: t.Protocol,
		ListenAddress: t.ListenAddress, TargetAddress: t.TargetAddress, Allow: t.Allow, ReportPeerID: t.ReportPeerID,
		AllowCustomProtocol: t.AllowCustomProtocol, Temp: t.Temp, MaxConns: t.MaxConns, ActiveStreams: t.ActiveStreams,
		BytesIn: t.BytesIn, BytesOut: t.BytesOut, Opened: t.Opened, Refused: t.Refused, LimitRefused: t.LimitRefused,
		Failed: t.Failed, DroppedDatagrams: t.DroppedDatagrams, UDPSessions: t.UDPSessions, UDPQueuedBytes: t.UDPQueuedBytes,
		Error: t.Error, LastError: t.LastError}
}

// tunnelStreamInfo is the wire form of a tunnel.StreamInfo.
func tunnelStreamInfo(st tunnel.StreamInfo) client.TunnelStreamInfo {
	return client.TunnelStreamInfo{ID: st.ID, TunnelID: st.TunnelID, Kind: st.Kind, Protocol: st.Protocol, Peer: st.Peer,
		LocalAddr: st.LocalAddr, RemoteAddr: st.RemoteAddr, BytesIn: st.BytesIn, BytesOut: st.BytesOut, Opened: st.Opened}
}

func (s *Server) tunnelList(w http.ResponseWriter, r *http.Request) {
	f, err := tunnelQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []client.TunnelInfo{}
	for _, t := range s.node.Tunnels.List() {
		if f.match(t.Kind, t.Protocol) {
			out = append(out, tunnelInfo(t))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) tunnelStreams(w http.ResponseWriter, r *http.Request) {
	f, err := tunnelQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []client.TunnelStreamInfo{}
	for _, st := range s.node.Tunnels.Streams() {
		if f.match(st.Kind, st.Protocol) {
			out = append(out, tunnelStreamInfo(st))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// tunnelQueryFilter is the optional ?kind=&protocol= of the list endpoints.
type tunnelQueryFilter struct{ kind, protocol string }

func tunnelQuery(r *http.Request) (tunnelQueryFilter, error) {
	q := r.URL.Query()
	f := tunnelQueryFilter{kind: q.Get("kind"), protocol: q.Get("protocol")}
	if err := checkQuery(q, "kind", "protocol"); err != nil {
		return f, err
	}
	switch f.kind {
	case "", tunnel.KindListen, tunnel.KindForward:
		return f, nil
	}
	return f, invalidf("query kind=%q: expected %s or %s", f.kind, tunnel.KindListen, tunnel.KindForward)
}

func (f tunnelQueryFilter) match(kind, protocol string) bool {
	return (f.kind == "" || f.kind == kind) && (f.protocol == "" || f.protocol == protocol)
}

func (s *Server) tunnelListen(w http.ResponseWriter, r *http.Request) {
	var req client.TunnelListenRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	allow, err := parseAllow(req.Allow)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.node.Tunnels.Listen(r.Context(), tunnel.ListenSpec{
		Protocol: req.Protocol, Target: req.Target, Allow: allow, ReportPeerID: req.ReportPeerID,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tunnelInfo(info))
}

// parseAllow reads the allow list, naming the entry that is not a peer ID.
func parseAllow(in []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(in))
	for i, s := range in {
		p, err := node.ParsePeerID(s)
		if err != nil {
			return nil, invalid(fmt.Errorf("allow[%d]: %w", i, err))
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Server) tunnelForward(w http.ResponseWriter, r *http.Request) {
	var req client.TunnelForwardRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	info, err := s.node.Tunnels.Forward(r.Context(), tunnel.ForwardSpec{
		Protocol: req.Protocol, ListenAddr: req.ListenAddress, Peer: req.Peer,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tunnelInfo(info))
}

func (s *Server) tunnelClose(w http.ResponseWriter, r *http.Request) {
	var req client.TunnelCloseRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	nt, ns, err := s.node.Tunnels.CloseTunnels(tunnel.Filter{All: req.All, ID: req.ID, Protocol: req.Protocol,
		ListenAddress: req.ListenAddress, TargetAddress: req.TargetAddress})
	if err != nil {
		if nt > 0 {
			err = withCode(client.CodeInternal, err) // closed, but saving the state file failed
		} else {
			err = orElse(client.CodeInvalidArgument, err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.TunnelCloseResult{Tunnels: nt, Streams: ns})
}

func (s *Server) tunnelStreamClose(w http.ResponseWriter, r *http.Request) {
	var req client.TunnelStreamCloseRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	switch {
	case req.All && req.ID != 0:
		writeError(w, invalid(errors.New("close streams: give either id or all, not both")))
	case req.All:
		writeJSON(w, http.StatusOK, client.TunnelStreamCloseResult{Streams: s.node.Tunnels.CloseAllStreams()})
	case req.ID == 0:
		writeError(w, invalid(errors.New("close streams: expected a stream id (see GET /v1/tunnels/streams) or all=true")))
	default:
		if err := s.node.Tunnels.CloseStream(req.ID); err != nil {
			writeError(w, withCode(client.CodeNotFound, err))
			return
		}
		writeJSON(w, http.StatusOK, client.TunnelStreamCloseResult{Streams: 1})
	}
}
