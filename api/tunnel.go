package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

// TunnelInfo is one entry of GET /v1/tunnels and the answer of
// POST /v1/tunnels/listen and /v1/tunnels/forward.
type TunnelInfo = tunnel.Info

// TunnelStreamInfo is one entry of GET /v1/tunnels/streams.
type TunnelStreamInfo = tunnel.StreamInfo

// TunnelListenRequest is the body of POST /v1/tunnels/listen.
type TunnelListenRequest struct {
	Protocol            string   `json:"protocol"`
	Target              string   `json:"target"`
	Allow               []string `json:"allow,omitempty"`
	ReportPeerID        bool     `json:"report_peer_id,omitempty"`
	AllowCustomProtocol bool     `json:"allow_custom_protocol,omitempty"`
	Temp                bool     `json:"temp,omitempty"`
	MaxConns            int      `json:"max_conns,omitempty"` // 0: tunnels.max_conns_per_tunnel
}

// TunnelForwardRequest is the body of POST /v1/tunnels/forward.
type TunnelForwardRequest struct {
	Protocol            string `json:"protocol"`
	ListenAddress       string `json:"listen_address"`
	Peer                string `json:"peer"` // peer ID or multiaddr ending in /p2p/<id>
	AllowCustomProtocol bool   `json:"allow_custom_protocol,omitempty"`
	Temp                bool   `json:"temp,omitempty"`
	MaxConns            int    `json:"max_conns,omitempty"` // 0: tunnels.max_conns_per_tunnel
}

// TunnelCloseRequest is the body of POST /v1/tunnels/close: either All, or
// at least one of the other fields (ANDed).
type TunnelCloseRequest = tunnel.Filter

// TunnelCloseResult is the answer of POST /v1/tunnels/close.
type TunnelCloseResult struct {
	Tunnels int `json:"tunnels"`
	Streams int `json:"streams"`
}

// TunnelStreamCloseRequest is the body of POST /v1/tunnels/streams/close:
// exactly one of ID (non-zero) or All.
type TunnelStreamCloseRequest struct {
	ID  uint64 `json:"id,omitempty"`
	All bool   `json:"all,omitempty"`
}

// TunnelStreamCloseResult is the answer of POST /v1/tunnels/streams/close.
type TunnelStreamCloseResult struct {
	Streams int `json:"streams"`
}

func (s *Server) tunnelRoutes() {
	s.handle("GET /v1/tunnels", kindCall, s.tunnelList)
	s.handle("POST /v1/tunnels/listen", kindCall, s.tunnelListen)
	s.handle("POST /v1/tunnels/forward", kindCall, s.tunnelForward)
	s.handle("POST /v1/tunnels/close", kindCall, s.tunnelClose)
	s.handle("GET /v1/tunnels/streams", kindCall, s.tunnelStreams)
	s.handle("POST /v1/tunnels/streams/close", kindCall, s.tunnelStreamClose)
}

// tunnelStatus maps a tunnel.Manager error: a closed manager is the daemon
// shutting down, a cancelled request is a timeout, a bad spec is 400, a
// tunnel or port already taken is 409, and anything else (the state file,
// the network) is the node's failure, 500.
func tunnelStatus(err error) int {
	switch {
	case errors.Is(err, tunnel.ErrInvalid),
		// A listen address that is not this machine's, or a port the
		// daemon may not bind: the caller's address is wrong.
		errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EACCES):
		return http.StatusBadRequest
	case errors.Is(err, tunnel.ErrExists), errors.Is(err, syscall.EADDRINUSE):
		return http.StatusConflict
	case errors.Is(err, tunnel.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (s *Server) tunnelList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := tunnelQueryFilter{kind: q.Get("kind"), protocol: q.Get("protocol")}
	if err := f.validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out := []TunnelInfo{}
	for _, t := range s.node.Tunnels.List() {
		if f.match(t.Kind, t.Protocol) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) tunnelStreams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := tunnelQueryFilter{kind: q.Get("kind"), protocol: q.Get("protocol")}
	if err := f.validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out := []TunnelStreamInfo{}
	for _, st := range s.node.Tunnels.Streams() {
		if f.match(st.Kind, st.Protocol) {
			out = append(out, st)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// tunnelQueryFilter is the optional ?kind=&protocol= of the list endpoints.
type tunnelQueryFilter struct{ kind, protocol string }

func (f tunnelQueryFilter) validate() error {
	switch f.kind {
	case "", tunnel.KindListen, tunnel.KindForward:
		return nil
	}
	return fmt.Errorf("query kind=%q: expected %s or %s", f.kind, tunnel.KindListen, tunnel.KindForward)
}

func (f tunnelQueryFilter) match(kind, protocol string) bool {
	return (f.kind == "" || f.kind == kind) && (f.protocol == "" || f.protocol == protocol)
}

func (s *Server) tunnelListen(w http.ResponseWriter, r *http.Request) {
	var req TunnelListenRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	allow, err := parseAllow(req.Allow)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	info, err := s.node.Tunnels.Listen(r.Context(), tunnel.ListenSpec{
		Protocol: req.Protocol, Target: req.Target, Allow: allow, ReportPeerID: req.ReportPeerID,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, tunnelStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// parseAllow reads the allow list, naming the entry that is not a peer ID.
func parseAllow(in []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(in))
	for i, s := range in {
		p, err := node.ParsePeerID(s)
		if err != nil {
			return nil, fmt.Errorf("allow[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Server) tunnelForward(w http.ResponseWriter, r *http.Request) {
	var req TunnelForwardRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	info, err := s.node.Tunnels.Forward(r.Context(), tunnel.ForwardSpec{
		Protocol: req.Protocol, ListenAddr: req.ListenAddress, Peer: req.Peer,
		AllowCustomProtocol: req.AllowCustomProtocol, Temp: req.Temp, MaxConns: req.MaxConns,
	})
	if err != nil {
		writeError(w, tunnelStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) tunnelClose(w http.ResponseWriter, r *http.Request) {
	var f TunnelCloseRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &f) {
		return
	}
	nt, ns, err := s.node.Tunnels.CloseTunnels(f)
	if err != nil {
		code := http.StatusBadRequest
		if nt > 0 || errors.Is(err, tunnel.ErrClosed) {
			// Closed, but saving the state file failed; or shutting down.
			code = http.StatusInternalServerError
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, TunnelCloseResult{Tunnels: nt, Streams: ns})
}

func (s *Server) tunnelStreamClose(w http.ResponseWriter, r *http.Request) {
	var req TunnelStreamCloseRequest
	if !s.readBody(w, r, controlLimit, "docs/api-tunnel.md", &req) {
		return
	}
	switch {
	case req.All && req.ID != 0:
		writeError(w, http.StatusBadRequest, errors.New("close streams: give either id or all, not both"))
	case req.All:
		writeJSON(w, http.StatusOK, TunnelStreamCloseResult{Streams: s.node.Tunnels.CloseAllStreams()})
	case req.ID == 0:
		writeError(w, http.StatusBadRequest, errors.New("close streams: expected a stream id (see GET /v1/tunnels/streams) or all=true"))
	default:
		if err := s.node.Tunnels.CloseStream(req.ID); err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, TunnelStreamCloseResult{Streams: 1})
	}
}

// TunnelListOptions narrows Tunnels and TunnelStreams; zero lists all.
type TunnelListOptions struct {
	Kind     string // tunnel.KindListen or tunnel.KindForward
	Protocol string
}

func (o TunnelListOptions) query() string {
	q := url.Values{}
	if o.Kind != "" {
		q.Set("kind", o.Kind)
	}
	if o.Protocol != "" {
		q.Set("protocol", o.Protocol)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Tunnels calls GET /v1/tunnels.
func (c *Client) Tunnels(ctx context.Context, o TunnelListOptions) ([]TunnelInfo, error) {
	var v []TunnelInfo
	return v, c.do(ctx, http.MethodGet, "/v1/tunnels"+o.query(), nil, &v)
}

// TunnelListen calls POST /v1/tunnels/listen.
func (c *Client) TunnelListen(ctx context.Context, req TunnelListenRequest) (TunnelInfo, error) {
	var v TunnelInfo
	return v, c.do(ctx, http.MethodPost, "/v1/tunnels/listen", req, &v)
}

// TunnelForward calls POST /v1/tunnels/forward.
func (c *Client) TunnelForward(ctx context.Context, req TunnelForwardRequest) (TunnelInfo, error) {
	var v TunnelInfo
	return v, c.do(ctx, http.MethodPost, "/v1/tunnels/forward", req, &v)
}

// TunnelClose calls POST /v1/tunnels/close.
func (c *Client) TunnelClose(ctx context.Context, f TunnelCloseRequest) (TunnelCloseResult, error) {
	var v TunnelCloseResult
	return v, c.do(ctx, http.MethodPost, "/v1/tunnels/close", f, &v)
}

// TunnelStreams calls GET /v1/tunnels/streams.
func (c *Client) TunnelStreams(ctx context.Context, o TunnelListOptions) ([]TunnelStreamInfo, error) {
	var v []TunnelStreamInfo
	return v, c.do(ctx, http.MethodGet, "/v1/tunnels/streams"+o.query(), nil, &v)
}

// TunnelCloseStreams calls POST /v1/tunnels/streams/close: one stream by id,
// or every stream with all.
func (c *Client) TunnelCloseStreams(ctx context.Context, req TunnelStreamCloseRequest) (TunnelStreamCloseResult, error) {
	var v TunnelStreamCloseResult
	return v, c.do(ctx, http.MethodPost, "/v1/tunnels/streams/close", req, &v)
}
