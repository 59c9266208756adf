package client

// GET /v1/status: why this node can or cannot be reached.

import (
	"context"
	"net/http"
	"time"
)

// Status is the body of GET /v1/status.
type Status struct {
	ID      string  `json:"id"`
	Agent   string  `json:"agent"`
	Version string  `json:"version"`
	Network string  `json:"network"`
	UptimeS float64 `json:"uptime_s"`
	// PublicNetwork is true when the node joins the public libp2p network
	// (Amino DHT, public relays), as [discovery] public_network sets.
	PublicNetwork bool `json:"public_network"`

	// Reachability is "public", "private" or "unknown".
	Reachability string `json:"reachability"`
	// ReachabilitySource says how it was learnt: "autonat" (probed by
	// peers), "config" (forced by [swarm] reachability) or "none" (not yet).
	ReachabilitySource string `json:"reachability_source"`
	// NATTypes maps "tcp" and "udp" to the NAT AutoNAT found in front of
	// this node: "cone" (hole punching can work) or "symmetric" (it cannot:
	// only a relay helps). Empty until known.
	NATTypes map[string]string `json:"nat_types"`

	ListenAddrs    []string `json:"listen_addrs"`    // the sockets this node listens on
	AnnouncedAddrs []string `json:"announced_addrs"` // what identify tells peers, relay addresses included
	ObservedAddrs  []string `json:"observed_addrs"`  // how peers see this node (identify)

	PortMapping PortMapping        `json:"port_mapping"`
	Relays      []RelayReservation `json:"relays"` // reservations this node holds on relays
	HolePunch   HolePunchStats     `json:"hole_punch"`
	Peers       []PeerInfo         `json:"peers"`
}

// PortMapping is the outcome of UPnP/NAT-PMP port mapping.
type PortMapping struct {
	Enabled bool     `json:"enabled"` // [swarm] nat_port_map
	State   string   `json:"state"`   // "off", "searching", "mapped" or "failed"
	Mapped  []string `json:"mapped"`  // external addresses the gateway gave
	Error   string   `json:"error,omitempty"`
}

// RelayReservation is one reservation this node holds on a relay.
type RelayReservation struct {
	Relay   string    `json:"relay"`   // the relay's peer ID
	Addrs   []string  `json:"addrs"`   // the circuit addresses it gives this node
	Expires time.Time `json:"expires"` // zero if unknown
}

// HolePunchStats counts DCUtR hole punches since the node started.
type HolePunchStats struct {
	Attempts  int                `json:"attempts"`
	Successes int                `json:"successes"`
	Failures  int                `json:"failures"`
	Recent    []HolePunchAttempt `json:"recent"` // the last few, newest first
}

// HolePunchAttempt is the outcome of one hole punch with a peer.
type HolePunchAttempt struct {
	Peer       string    `json:"peer"`
	Time       time.Time `json:"time"`
	Outcome    string    `json:"outcome"` // "success" or "failure"
	Error      string    `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
}

// Status calls GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}
