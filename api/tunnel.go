package api

// Handlers of tunnels (package tunnel): listen, forward, list, close, and
// the tunnelled connections. docs/api-tunnel.md is the reference of these
// endpoints.

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

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

// tunnelInfo is the wire form of a tunnel.Info. An address the tunnel
// could not parse (a saved one; Error says so) is "".
func tunnelInfo(t tunnel.Info) client.TunnelInfo {
	return client.TunnelInfo{ID: t.ID, Kind: string(t.Kind), Transport: t.Transport, Protocol: string(t.Protocol),
		ListenAddress: t.ListenAddress.String(), TargetAddress: t.TargetAddress.String(), Allow: peerStrings(t.Allow), ReportPeerID: t.ReportPeerID,
		AllowCustomProtocol: t.AllowCustomProtocol, Temp: t.Temp, MaxConns: t.MaxConns, ActiveStreams: t.ActiveStreams,
		BytesIn: t.BytesIn, BytesOut: t.BytesOut, Opened: t.Opened, Refused: t.Refused, LimitRefused: t.LimitRefused,
		Failed: t.Failed, LastError: t.LastError, DroppedDatagrams: t.DroppedDatagrams, UDPSessions: t.UDPSessions, UDPQueuedBytes: t.UDPQueuedBytes,
		Error: t.Error}
}

// peerStrings is the wire form of an allow-list: nil when empty (the field
// is then absent).
func peerStrings(ids []peer.ID) []string {
	if len(ids) == 0 {
		return nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// tunnelStreamInfo is the wire form of a tunnel.StreamInfo. A local
// address with no multiaddr form (nil) is "".
func tunnelStreamInfo(st tunnel.StreamInfo) client.TunnelStreamInfo {
	return client.TunnelStreamInfo{ID: st.ID, TunnelID: st.TunnelID, Kind: string(st.Kind), Protocol: string(st.Protocol),
		Peer: st.Peer.String(), LocalAddr: st.LocalAddr.String(), RemoteAddr: st.RemoteAddr.String(),
		BytesIn: st.BytesIn, BytesOut: st.BytesOut, Opened: st.Opened}
}

func (s *Server) tunnelList(w http.ResponseWriter, r *http.Request) {
	f, err := tunnelQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []client.TunnelInfo{}
	for _, t := range s.node.Tunnels().List() {
		if f.match(string(t.Kind), string(t.Protocol)) {
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
	for _, st := range s.node.Tunnels().Streams() {
		if f.match(string(st.Kind), string(st.Protocol)) {
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
	case "", string(tunnel.KindListen), string(tunnel.KindForward):
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
	target, err := parseTunnelAddr("target", "<target-multiaddr>", req.Target, tunnel.TargetForms)
	if err != nil {
		writeError(w, err)
		return
	}
	allow, err := parseAllow(req.Allow)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.node.Tunnels().Listen(r.Context(), tunnel.ListenSpec{
		Protocol: protocol.ID(req.Protocol), Target: target, Allow: allow, ReportPeerID: req.ReportPeerID,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tunnelInfo(info.Info))
}

// parseTunnelAddr reads a tunnel's local address, field in the JSON body
// and arg on the command line; the error names both and the forms
// expected. "" is nil: package tunnel refuses it as empty, with the same
// forms. Whether the address is usable (transport, port, unix path) is
// package tunnel's check.
func parseTunnelAddr(field, arg, s, forms string) (ma.Multiaddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, invalid(fmt.Errorf("tunnel: %s (%s) %q: not a valid multiaddr: %w (expected %s)", field, arg, s, err, forms))
	}
	return m, nil
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
	listen, err := parseTunnelAddr("listen_address", "<listen-multiaddr>", req.ListenAddress, tunnel.ListenForms)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := node.ParseTarget(req.Peer)
	if err != nil {
		writeError(w, invalid(fmt.Errorf("tunnel: peer: %w", err)))
		return
	}
	info, err := s.node.Tunnels().Forward(r.Context(), tunnel.ForwardSpec{
		Protocol: protocol.ID(req.Protocol), ListenAddr: listen, Peer: target.ID, Addrs: target.Addrs,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, tunnelInfo(info.Info))
}

// The forms of a close filter's addresses, as 'warren tunnel ls --wide'
// shows them.
const (
	closeListenForms = "a forward's bound address, " + tunnel.ListenForms + ", or /p2p/<own-peer-id> for every listener"
	closeTargetForms = "a listener's target, " + tunnel.TargetForms + ", or a forward's peer as /p2p/<peer-id>, <maddr>/p2p/<peer-id> or a bare peer ID"
)

// parseCloseTarget reads a close filter's target_address: a multiaddr, or
// a bare peer ID, which stands for /p2p/<peer-id>. "" is nil (not given).
func parseCloseTarget(s string) (ma.Multiaddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := ma.NewMultiaddr(s)
	if err == nil {
		return m, nil
	}
	if id, idErr := peer.Decode(s); idErr == nil {
		if m, idErr := ma.NewMultiaddr("/p2p/" + id.String()); idErr == nil {
			return m, nil
		}
	}
	return nil, invalid(fmt.Errorf("tunnel: target_address (--target-address) %q: not a valid multiaddr or peer ID: %w (expected %s)", s, err, closeTargetForms))
}

func (s *Server) tunnelClose(w http.ResponseWriter, r *http.Request) {
	var req client.TunnelCloseRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	listen, err := parseTunnelAddr("listen_address", "--listen-address", req.ListenAddress, closeListenForms)
	if err != nil {
		writeError(w, err)
		return
	}
	target, err := parseCloseTarget(req.TargetAddress)
	if err != nil {
		writeError(w, err)
		return
	}
	nt, ns, err := s.node.Tunnels().CloseTunnels(tunnel.Filter{All: req.All, ID: req.ID, Protocol: protocol.ID(req.Protocol),
		ListenAddress: listen, TargetAddress: target})
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
		writeJSON(w, http.StatusOK, client.TunnelStreamCloseResult{Streams: s.node.Tunnels().CloseAllStreams()})
	case req.ID == 0:
		writeError(w, invalid(errors.New("close streams: expected a stream id (see GET /v1/tunnels/streams) or all=true")))
	default:
		if err := s.node.Tunnels().CloseStream(req.ID); err != nil {
			writeError(w, withCode(client.CodeNotFound, err))
			return
		}
		writeJSON(w, http.StatusOK, client.TunnelStreamCloseResult{Streams: 1})
	}
}
