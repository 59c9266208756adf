package client

// The node's own routes: health, version, identity, peers, ping.

import (
	"context"
	"net/http"
)

// Health is the body of GET /v1/health.
type Health struct {
	Status  string  `json:"status"` // "ok"
	ID      string  `json:"id"`     // this node's peer ID
	Peers   int     `json:"peers"`  // connected peers
	UptimeS float64 `json:"uptime_s"`
}

// VersionInfo is the body of GET /v1/version.
type VersionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
}

// IDInfo is the body of GET /v1/id.
type IDInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"` // multiaddrs, each ending in /p2p/<id>
	Network   string   `json:"network"`
	PublicKey string   `json:"public_key"` // base64 of the protobuf-encoded key
	Agent     string   `json:"agent"`
}

// PeerInfo is one entry of GET /v1/peers.
type PeerInfo struct {
	ID        string  `json:"id"`
	Addr      string  `json:"addr"`      // the remote multiaddr of the first connection
	Direction string  `json:"direction"` // "Inbound" or "Outbound"
	Limited   bool    `json:"limited"`   // a relayed connection with limits
	Streams   int     `json:"streams"`
	LatencyMS float64 `json:"latency_ms"`
	// Direct is false when the peer is reached only through a relay.
	Direct bool `json:"direct"`
	// Transport of the connection shown: "tcp", "quic-v1", "webtransport",
	// "webrtc-direct", "ws" or "circuit" (relayed).
	Transport string `json:"transport"`
	BytesIn   int64  `json:"bytes_in"`  // bytes received from the peer since the node started
	BytesOut  int64  `json:"bytes_out"` // bytes sent to the peer since the node started
}

// ConnectRequest is the body of POST /v1/peers/connect.
type ConnectRequest struct {
	Addr string `json:"addr"` // multiaddr ending in /p2p/<id>, or a bare peer ID
}

// ConnectResult is the answer of POST /v1/peers/connect.
type ConnectResult struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// DisconnectRequest is the body of POST /v1/peers/disconnect.
type DisconnectRequest struct {
	Peer string `json:"peer"`
}

// Empty is the answer of the calls that return nothing: {}.
type Empty struct{}

// ShutdownResult is the answer of POST /v1/shutdown, sent before the
// daemon stops.
type ShutdownResult struct {
	Status string `json:"status"` // "stopping"
	PID    int    `json:"pid"`    // the daemon's process, which exits once stopped
}

// PingRequest is the body of POST /v1/ping.
type PingRequest struct {
	Peer  string `json:"peer"`
	Count int    `json:"count"` // 1 to 1000; 0 means 1
}

// PingResult is the answer of POST /v1/ping.
type PingResult struct {
	Peer  string    `json:"peer"`
	RTTMS []float64 `json:"rtt_ms"`
	AvgMS float64   `json:"avg_ms"`
}

// Shutdown calls POST /v1/shutdown: the daemon answers, then stops as on
// SIGTERM (it saves its tunnels, closes its services and removes api.json).
// It returns once the daemon has accepted; wait for the process to exit
// (the PID of api.json) to know it has stopped. A node not run by warren
// daemon answers CodeUnsupported.
func (c *Client) Shutdown(ctx context.Context) error {
	var v ShutdownResult
	return c.do(ctx, http.MethodPost, "/v1/shutdown", nil, &v)
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Version calls GET /v1/version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	return v, c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
}

// ID calls GET /v1/id.
func (c *Client) ID(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	return v, c.do(ctx, http.MethodGet, "/v1/id", nil, &v)
}

// Peers calls GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var v []PeerInfo
	return v, c.do(ctx, http.MethodGet, "/v1/peers", nil, &v)
}

// Connect calls POST /v1/peers/connect.
func (c *Client) Connect(ctx context.Context, addr string) (ConnectResult, error) {
	var v ConnectResult
	return v, c.do(ctx, http.MethodPost, "/v1/peers/connect", ConnectRequest{Addr: addr}, &v)
}

// Disconnect calls POST /v1/peers/disconnect.
func (c *Client) Disconnect(ctx context.Context, peerID string) error {
	return c.do(ctx, http.MethodPost, "/v1/peers/disconnect", DisconnectRequest{Peer: peerID}, nil)
}

// Ping calls POST /v1/ping with count pings (0: one).
func (c *Client) Ping(ctx context.Context, peerID string, count int) (PingResult, error) {
	var v PingResult
	return v, c.do(ctx, http.MethodPost, "/v1/ping", PingRequest{Peer: peerID, Count: count}, &v)
}
