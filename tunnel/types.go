package tunnel

import (
	"context"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind is a tunnel's kind, as reported in Info.Kind and StreamInfo.Kind:
// KindListen or KindForward. In JSON (and the state file) it is its text.
type Kind string

// Tunnel kinds.
const (
	// KindListen is a tunnel that accepts streams from remote peers on a
	// protocol and connects each one to a local target (kubo "p2p listen").
	KindListen Kind = "listen"
	// KindForward is a tunnel that accepts local connections and carries each
	// one over a new stream to a remote peer (kubo "p2p forward", ssh -L).
	KindForward Kind = "forward"
)

// Transports a tunnel carries, as reported in Info.Transport.
const (
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
	TransportUnix = "unix"
)

// Defaults of Options (config's tunnels section uses the same values: a
// test in package config checks them, as config cannot import tunnel).
const (
	DefaultDialTimeout    = 30 * time.Second
	DefaultUDPIdleTimeout = 60 * time.Second
	// DefaultMaxConns is the cap on concurrent connections of one tunnel
	// when neither the spec nor Options.MaxConns sets one.
	DefaultMaxConns = 1024
	// MaxMaxConns is the largest cap a tunnel or Options.MaxConns may set.
	MaxMaxConns = 1 << 20
)

// ServiceName is the resource-manager service every tunnel stream is
// attached to (network.StreamScope.SetService), in both directions. The
// root package gives it ServiceStreamsPerPeer streams per peer each way.
const ServiceName = "warren.tunnel"

// Options configure a Manager. The zero value is usable.
type Options struct {
	// StatePath is the file where persistent (non-Temp) tunnels are saved as
	// JSON (written atomically, mode 0600). Empty means no persistence.
	StatePath string
	// DialTimeout bounds opening a stream for a forward (including connecting
	// to the peer) and dialling the target of a listener. Default 30s.
	DialTimeout time.Duration
	// UDPIdleTimeout closes a UDP association after this long without a
	// datagram in either direction. Default 60s.
	UDPIdleTimeout time.Duration
	// RepoDir is the node's repo directory (holding api.sock, keys,
	// tunnels.json). Unix-socket targets and forward listen addresses inside
	// it, directly or through a symlink, are refused: a tunnel to api.sock
	// would hand remote peers the control API. Empty disables the check.
	RepoDir string
	// MaxConns caps the concurrent connections of a tunnel whose spec sets
	// no MaxConns (config tunnels.max_conns_per_tunnel). 0 means
	// DefaultMaxConns.
	MaxConns int
	// Reach, when set, connects to a forward's peer before each stream and
	// says whether the connection may carry a tunnel (warren's node.Reach:
	// it finds the peer by ID, waits for hole punching to replace a relayed
	// connection, and refuses a relay whose limits would cut the tunnel,
	// with an error naming the peer, what was tried and the fix). The
	// stream is then opened allowing a limited (relayed) connection. Nil:
	// the host's Connect, and any connection is used.
	Reach func(ctx context.Context, p peer.ID) error
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the tunnel metrics. Nil registers nothing.
	Registerer prometheus.Registerer
}

// ListenSpec describes a listen tunnel: remote peers opening a stream on
// Protocol are connected to Target.
type ListenSpec struct {
	// Protocol is the libp2p protocol to serve, e.g. "/x/ssh".
	Protocol protocol.ID `json:"protocol"`
	// Target is the multiaddr of the local service:
	// /ip4|ip6|dns|dns4|dns6/<host>/tcp|udp/<port> or /unix/<path>
	// (TargetForms; ma.StringCast or ma.NewMultiaddr build one).
	Target ma.Multiaddr `json:"target"`
	// Allow, if non-empty, lists the only peers allowed through. Other peers
	// are refused (stream reset) before the target is dialled.
	Allow []peer.ID `json:"allow,omitempty"`
	// ReportPeerID writes the remote peer ID and "\n" to the target before
	// any tunnelled byte (kubo --report-peer-id). TCP and unix targets only.
	ReportPeerID bool `json:"report_peer_id,omitempty"`
	// AllowCustomProtocol permits protocol names outside "/x/".
	AllowCustomProtocol bool `json:"allow_custom_protocol,omitempty"`
	// Temp tunnels are not saved to the state file.
	Temp bool `json:"temp,omitempty"`
	// MaxConns caps the streams served at once (0: Options.MaxConns). One
	// peer may hold at most half of them (rounded up), or all of them when
	// Allow names a single peer. Streams over either cap are reset.
	MaxConns int `json:"max_conns,omitempty"`
}

// ForwardSpec describes a forward tunnel: connections accepted on ListenAddr
// are each carried over a new stream to Peer on Protocol.
type ForwardSpec struct {
	// Protocol is the remote peer's tunnel protocol, e.g. "/x/ssh".
	Protocol protocol.ID `json:"protocol"`
	// ListenAddr is the local multiaddr to accept connections on:
	// /ip4|ip6/<ip>/tcp|udp/<port> (port 0 picks a free port) or /unix/<path>
	// (ListenForms).
	ListenAddr ma.Multiaddr `json:"listen_address"`
	// Peer is the remote peer.
	Peer peer.ID `json:"peer"`
	// Addrs, if any, are Peer's addresses, added to the peerstore before
	// each stream is opened; without them the host must know or find Peer.
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	// AllowCustomProtocol permits protocol names outside "/x/".
	AllowCustomProtocol bool `json:"allow_custom_protocol,omitempty"`
	// Temp tunnels are not saved to the state file.
	Temp bool `json:"temp,omitempty"`
	// MaxConns caps the local clients served at once (0: Options.MaxConns);
	// a client over it is reset at once. A UDP forward keeps at most
	// min(MaxConns, 256) client associations, half of them per source IP.
	MaxConns int `json:"max_conns,omitempty"`
}

// Info describes one tunnel.
//
// For a listen tunnel ListenAddress is "/p2p/<own peer ID>" and TargetAddress
// is the target multiaddr; for a forward tunnel ListenAddress is the real
// bound multiaddr and TargetAddress is "/p2p/<peer ID>" (as kubo's "p2p ls").
// An address a saved tunnel holds that is not a multiaddr (the tunnel is
// listed with Error saying so) is nil.
// BytesIn counts bytes received from remote peers, BytesOut bytes sent to them.
type Info struct {
	ID            uint64       `json:"id"`
	Kind          Kind         `json:"kind"`
	Transport     string       `json:"transport,omitempty"`
	Protocol      protocol.ID  `json:"protocol"`
	ListenAddress ma.Multiaddr `json:"listen_address"`
	TargetAddress ma.Multiaddr `json:"target_address"`
	// Allow is a listener's allow-list (ListenSpec.Allow); empty: every peer.
	Allow               []peer.ID `json:"allow,omitempty"`
	ReportPeerID        bool      `json:"report_peer_id"`
	AllowCustomProtocol bool      `json:"allow_custom_protocol"`
	Temp                bool      `json:"temp"`
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
	// because a connection cap was reached: MaxConns, the per-peer share,
	// the resource manager's tunnel service, or the UDP association caps.
	LimitRefused uint64 `json:"streams_refused_limit"`
	// Failed counts connections that could not be established (target or
	// peer unreachable, protocol not supported by the peer, ...).
	Failed uint64 `json:"streams_failed"`
	// DroppedDatagrams counts UDP datagrams dropped because a client's
	// stream could not keep up or could not be opened.
	DroppedDatagrams uint64 `json:"dropped_datagrams,omitempty"`
	// UDPSessions is how many client associations a UDP forward holds,
	// including ones still opening their stream.
	UDPSessions int `json:"udp_sessions,omitempty"`
	// UDPQueuedBytes is how many bytes of client datagrams a UDP forward
	// holds queued for its associations' streams.
	UDPQueuedBytes int64 `json:"udp_queued_bytes,omitempty"`
	// LastError is the error of the last connection that could not be
	// established (counted in Failed), e.g. the peer has no listener for the
	// protocol, or for a peer out of reach what was tried and how to fix
	// it, on one line; "" when none failed.
	LastError string `json:"last_error,omitempty"`
	// Error is set when the tunnel is not running, e.g. a restore failed
	// (port taken). The tunnel stays listed and saved until closed.
	Error string `json:"error,omitempty"`
}

// StreamInfo describes one active tunnelled connection.
type StreamInfo struct {
	ID       uint64      `json:"id"`
	TunnelID uint64      `json:"tunnel_id"`
	Kind     Kind        `json:"kind"`
	Protocol protocol.ID `json:"protocol"`
	// Peer is the remote peer.
	Peer peer.ID `json:"peer"`
	// LocalAddr is the local end of the tunnelled connection as a multiaddr:
	// the client's address for a forward (/ip4|ip6/<ip>/tcp|udp/<port>, or
	// /unix/<path> with the path the client's socket is bound to, "@" for
	// an unnamed one, as Linux reports it), the target's for a listen
	// tunnel (the connected address, else the target multiaddr). Nil when
	// the address has no multiaddr form.
	LocalAddr ma.Multiaddr `json:"local_address"`
	// RemoteAddr is the remote peer's connection multiaddr, ending in
	// /p2p/<peer ID>.
	RemoteAddr ma.Multiaddr `json:"remote_address"`
	BytesIn    uint64       `json:"bytes_in"`
	BytesOut   uint64       `json:"bytes_out"`
	Opened     time.Time    `json:"opened"`
}

// Filter selects tunnels for Manager.CloseTunnels. Either All is set, or at
// least one of the other fields; the given fields are ANDed.
//
// ListenAddress matches a tunnel's Info.ListenAddress (a forward's bound
// address, or "/p2p/<own peer ID>" for every listener), or the address a
// forward was asked to listen on unless that asked for port 0.
// TargetAddress matches a tunnel's Info.TargetAddress: a listener's target
// multiaddr, or "/p2p/<peer ID>" of a forward, which also matches as one of
// the forward's ForwardSpec.Addrs followed by /p2p/<peer ID> (the peer as
// it was given). Addresses compare with ma.Multiaddr.Equal.
type Filter struct {
	All           bool         `json:"all,omitempty"`
	ID            uint64       `json:"id,omitempty"`
	Protocol      protocol.ID  `json:"protocol,omitempty"`
	ListenAddress ma.Multiaddr `json:"listen_address,omitempty"`
	TargetAddress ma.Multiaddr `json:"target_address,omitempty"`
}
