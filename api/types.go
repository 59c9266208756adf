package api

import "github.com/warren-p2p/warren/node"

// Error is the body of every failed API call.
type Error struct {
	Error string `json:"error"`
}

// Health is the body of GET /v1/health.
type Health struct {
	Status  string  `json:"status"`
	ID      string  `json:"id"`
	Peers   int     `json:"peers"`
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
	Addrs     []string `json:"addrs"`
	Network   string   `json:"network"`
	PublicKey string   `json:"public_key"`
	Agent     string   `json:"agent"`
}

// PeerInfo is one entry of GET /v1/peers.
type PeerInfo = node.PeerInfo

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

// PingRequest is the body of POST /v1/ping.
type PingRequest struct {
	Peer  string `json:"peer"`
	Count int    `json:"count"`
}

// PingResult is the answer of POST /v1/ping.
type PingResult struct {
	Peer  string    `json:"peer"`
	RTTMS []float64 `json:"rtt_ms"`
	AvgMS float64   `json:"avg_ms"`
}
