package client

// Tunnels: TCP, unix-socket and UDP services carried over libp2p streams.
// docs/api-tunnel.md is the reference of these routes.

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Tunnel kinds.
const (
	TunnelKindListen  = "listen"  // exposes a local service to remote peers
	TunnelKindForward = "forward" // carries local connections to a remote peer's listen tunnel
)

// TunnelInfo is one entry of GET /v1/tunnels and the answer of
// POST /v1/tunnels/listen and /v1/tunnels/forward.
//
// For a listen tunnel ListenAddress is "/p2p/<own peer ID>" and
// TargetAddress is the target multiaddr; for a forward tunnel ListenAddress
// is the real bound multiaddr and TargetAddress is "/p2p/<peer ID>".
// BytesIn counts bytes received from remote peers, BytesOut bytes sent to
// them.
type TunnelInfo struct {
	ID                  uint64   `json:"id"`
	Kind                string   `json:"kind"` // TunnelKindListen or TunnelKindForward
	Transport           string   `json:"transport,omitempty"`
	Protocol            string   `json:"protocol"`
	ListenAddress       string   `json:"listen_address"`
	TargetAddress       string   `json:"target_address"`
	Allow               []string `json:"allow,omitempty"`
	ReportPeerID        bool     `json:"report_peer_id"`
	AllowCustomProtocol bool     `json:"allow_custom_protocol"`
	Temp                bool     `json:"temp"`
	// MaxConns is the tunnel's effective cap on concurrent connections.
	MaxConns      int    `json:"max_conns"`
	ActiveStreams int    `json:"active_streams"`
	BytesIn       uint64 `json:"bytes_in"`
	BytesOut      uint64 `json:"bytes_out"`
	// Opened counts tunnelled connections established.
	Opened uint64 `json:"streams_opened"`
	// Refused counts streams refused because the peer is not in Allow.
	Refused uint64 `json:"streams_refused"`
	// LimitRefused counts streams (listen) or clients (forward) refused
	// because a connection cap was reached.
	LimitRefused uint64 `json:"streams_refused_limit"`
	// Failed counts connections that could not be established.
	Failed uint64 `json:"streams_failed"`
	// DroppedDatagrams counts UDP datagrams dropped because a client's
	// stream could not keep up or could not be opened.
	DroppedDatagrams uint64 `json:"dropped_datagrams,omitempty"`
	// LastError is the error of the last connection that could not be
	// established (counted in Failed), for a peer out of reach what was
	// tried and how to fix it, on one line; "" when none failed.
	LastError string `json:"last_error,omitempty"`
	// UDPSessions is how many client associations a UDP forward holds.
	UDPSessions int `json:"udp_sessions,omitempty"`
	// UDPQueuedBytes is how many bytes of client datagrams a UDP forward
	// holds queued.
	UDPQueuedBytes int64 `json:"udp_queued_bytes,omitempty"`
	// Error is set when the tunnel is not running, e.g. a restore failed
	// (port taken). The tunnel stays listed and saved until closed.
	Error string `json:"error,omitempty"`
}

// TunnelStreamInfo is one entry of GET /v1/tunnels/streams: an active
// tunnelled connection.
type TunnelStreamInfo struct {
	ID       uint64 `json:"id"`
	TunnelID uint64 `json:"tunnel_id"`
	Kind     string `json:"kind"`
	Protocol string `json:"protocol"`
	Peer     string `json:"peer"` // the remote peer ID
	// LocalAddr is the local end: the client address for a forward, the
	// target address for a listen tunnel.
	LocalAddr string `json:"local_address"`
	// RemoteAddr is the remote peer's connection multiaddr (with /p2p/<id>).
	RemoteAddr string    `json:"remote_address"`
	BytesIn    uint64    `json:"bytes_in"`
	BytesOut   uint64    `json:"bytes_out"`
	Opened     time.Time `json:"opened"`
}

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
type TunnelCloseRequest struct {
	All           bool   `json:"all,omitempty"`
	ID            uint64 `json:"id,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	ListenAddress string `json:"listen_address,omitempty"`
	TargetAddress string `json:"target_address,omitempty"`
}

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

// TunnelListOptions narrows Tunnels and TunnelStreams; zero lists all.
type TunnelListOptions struct {
	Kind     string // TunnelKindListen or TunnelKindForward
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
