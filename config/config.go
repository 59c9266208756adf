// Package config owns warren's settings: the Config type with its documented
// defaults and profiles, validation, and the repo on disk (identity key,
// config file, lock, API endpoint record, token and saved tunnels).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"

	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/internal/netname"
	"github.com/warren-p2p/warren/msg"
)

// Duration is a time.Duration written in TOML and JSON as text ("30s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: expected a Go duration such as 30s or 2m", string(b))
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Config is everything a warren node can be told. Every field is written out,
// with its documentation, in the repo's config.toml.
type Config struct {
	// Profile is the profile the repo was made with: a setting left out of
	// config.toml keeps this profile's value.
	Profile   string    `toml:"profile" comment:"Profile this repo was made with (default or test). A setting left out of this file keeps the profile's value."`
	Network   string    `toml:"network" comment:"Name of the warren network. Nodes only talk (DHT, messages, topics) to nodes of the same network."`
	Addresses Addresses `toml:"addresses"`
	Discovery Discovery `toml:"discovery"`
	Swarm     Swarm     `toml:"swarm"`
	API       API       `toml:"api"`
	Tunnels   Tunnels   `toml:"tunnels"`
	Messages  Messages  `toml:"messages"`
	Gossip    Gossip    `toml:"gossip"`
	Log       Log       `toml:"log"`
}

// Addresses says where the node listens and what it announces.
type Addresses struct {
	Listen   []string `toml:"listen" comment:"Multiaddrs to listen on (TCP and QUIC-v1). Port 0 picks a free port."`
	Announce []string `toml:"announce" comment:"If not empty, announce exactly these multiaddrs instead of the listen addresses."`
}

// Discovery configures how peers are found.
type Discovery struct {
	Bootstrap []string `toml:"bootstrap" comment:"Peers to connect to at start, as multiaddrs ending in /p2p/<peer-id>."`
	MDNS      bool     `toml:"mdns" comment:"Find peers of the same network on the local network with mDNS."`
	DHT       string   `toml:"dht" comment:"Kademlia DHT mode: auto (server when publicly reachable), server, client, or off."`
	// PublicNetwork joins the public libp2p network beside warren's own.
	PublicNetwork bool `toml:"public_network" comment:"Join the public libp2p network as kubo does, beside this network's own peers: an Amino DHT client (/ipfs/kad/1.0.0) with kubo's bootstrap peers, to find peers by ID, relays and AutoNAT servers, and topic members across NATs (a node with dht set to server serves the Amino DHT too). What joining makes public: anyone can find this node's peer ID and its addresses, and the provider records of its topics' rendezvous keys. Messages, topics and tunnels stay warren's own protocols; false (the test profile, private deployments) uses only bootstrap and warren's own DHT."`
}

// Swarm configures the libp2p host.
type Swarm struct {
	Security        []string        `toml:"security" comment:"Security transports in order of preference, from noise and tls. The default puts tls first: TLS uses AES-GCM, cheaper than Noise's ChaCha20 on CPUs with AES instructions."`
	PreferTransport string          `toml:"prefer_transport" comment:"Which transport to dial first when a peer has both: tcp (QUIC 250ms later; tunnels move more bytes per CPU over TCP+yamux) or quic (libp2p's default ranking)."`
	ConnMgr         ConnMgr         `toml:"conn_mgr"`
	ResourceManager ResourceManager `toml:"resource_manager"`
	NATPortMap      bool            `toml:"nat_port_map" comment:"Ask the router for a port mapping (UPnP / NAT-PMP)."`
	AutoNAT         bool            `toml:"autonat" comment:"Find out whether this node is publicly reachable (AutoNAT v2)."`
	HolePunching    bool            `toml:"hole_punching" comment:"Upgrade relayed connections to direct ones by hole punching (DCUtR)."`
	RelayClient     bool            `toml:"relay_client" comment:"Use circuit relays to be reachable when behind NAT."`
	StaticRelays    []string        `toml:"static_relays" comment:"Relays to use (multiaddrs ending in /p2p/<peer-id>); empty means connected peers that offer the relay service."`
	RelayService    bool            `toml:"relay_service" comment:"Act as a circuit relay (v2) for other peers. libp2p runs it only while the node is publicly reachable (see reachability)."`
	RelayLimit      RelayLimit      `toml:"relay_limit"`
	Reachability    string          `toml:"reachability" comment:"auto (let AutoNAT find out), public, or private (behind NAT: reserve relay slots at once)."`
	PublicRanges    []string        `toml:"public_ranges" comment:"CIDRs (e.g. 100.64.0.0/10) whose addresses libp2p treats as public: for private WANs behind NAT (CGNAT, corporate networks) and simulated internets. libp2p's address manager, identify, AutoNAT, AutoRelay and hole punching otherwise ignore private addresses. Process-wide: every node in one process shares it. At most 64, none overlapping 127.0.0.0/8; IPv6 ones within 2000::/3 (e.g. 2001:db8::/32)."`
}

// RelayLimit bounds each connection this node relays (relay service only).
type RelayLimit struct {
	Duration Duration `toml:"duration" comment:"How long one relayed connection may last; 0: no limit. libp2p's default is 2m."`
	Data     int64    `toml:"data" comment:"Bytes one relayed connection may carry in each direction; 0: no limit. libp2p's default is 131072 (128 KiB), too little for long tunnels."`
}

// ConnMgr holds the connection manager's watermarks.
type ConnMgr struct {
	LowWater    int      `toml:"low_water" comment:"Connections kept when trimming."`
	HighWater   int      `toml:"high_water" comment:"Trim connections above this many."`
	GracePeriod Duration `toml:"grace_period" comment:"New connections are not trimmed for this long."`
}

// ResourceManager holds the limits of libp2p's resource manager.
type ResourceManager struct {
	Enabled            bool `toml:"enabled" comment:"Enforce the limits below."`
	MaxMemoryMB        int  `toml:"max_memory_mb" comment:"Memory libp2p may account to connections and streams, MiB. Accounted, not allocated: yamux counts 256 KiB of window per stream."`
	MaxFileDescriptors int  `toml:"max_file_descriptors" comment:"File descriptors libp2p may use."`
	MaxConns           int  `toml:"max_conns" comment:"Connections in total (inbound plus outbound)."`
	MaxStreams         int  `toml:"max_streams" comment:"Streams in total; each tunnelled connection is one stream."`
	MaxStreamsPerPeer  int  `toml:"max_streams_per_peer" comment:"Streams to or from one peer."`
}

// API configures the local control API.
type API struct {
	TCP               string   `toml:"tcp" comment:"Also serve the API on this loopback TCP address, an IP of 127.0.0.0/8 or [::1] with a port (e.g. 127.0.0.1:5050; port 0 picks one; no host names), with a bearer token kept in the repo. Empty: unix socket only."`
	MaxTCPConns       int      `toml:"max_tcp_conns" comment:"Connections the TCP API keeps open at once (1 to 4096); one more is answered 503 and closed at once. The unix socket has no such limit."`
	ReadHeaderTimeout Duration `toml:"read_header_timeout" comment:"A request's line and headers must arrive within this, else its connection is closed (both listeners)."`
	ReadTimeout       Duration `toml:"read_timeout" comment:"A JSON request body must arrive within this (408 otherwise); a bulk body must make progress within it on every read, however long it runs."`
	WriteTimeout      Duration `toml:"write_timeout" comment:"An answer, once begun, must be written within this. NDJSON streams are not limited."`
	IdleTimeout       Duration `toml:"idle_timeout" comment:"A kept-alive connection with no request for this long is closed. At least 31s: the CLI and Go client drop their idle connections after 30s, so the daemon never closes one they are about to reuse."`
	Dashboard         bool     `toml:"dashboard" comment:"Serve the web dashboard at /ui/ on the TCP API (its pages call /v1 with the token; 'warren webui' prints the URL). With tcp empty the daemon then listens on 127.0.0.1, on a port of its own choosing, recorded in api.json."`
}

// Tunnels configures TCP and UDP tunnels.
type Tunnels struct {
	DialTimeout    Duration `toml:"dial_timeout" comment:"How long a forward waits to open a stream to the remote peer."`
	UDPIdleTimeout Duration `toml:"udp_idle_timeout" comment:"A UDP flow with no datagram for this long is closed."`
	DirectWait     Duration `toml:"direct_wait" comment:"When the only connection to a peer is relayed, how long hole punching is given to make a direct one, counted from the relayed connection's start, before a forward's client connection, a send or a request uses the relay, which it does only if the relay lets a connection carry at least 1 MiB (public relays: 128 KiB); otherwise it fails with an error naming the peer, what was tried and the fix. DCUtR makes up to 3 attempts of up to 5s each. At most half the time left of the caller's timeout (dial_timeout, a request's timeout); only with swarm.hole_punching; 0: do not wait."`
	// MaxConnsPerTunnel is tunnel.Options.MaxConns.
	MaxConnsPerTunnel int `toml:"max_conns_per_tunnel" comment:"Concurrent connections one tunnel serves when it sets no max_conns of its own (1 to 1048576). A listener gives one peer at most half of them; a UDP forward keeps at most min(this, 256) client flows. Over the cap a stream or client is reset and counted."`
}

// MaxTunnelConns is the largest tunnels.max_conns_per_tunnel (tunnel.MaxMaxConns).
const MaxTunnelConns = 1 << 20

// The largest messages.max_message_size and gossip.max_message_size
// accepted. Clients of the API size their buffers from these, so that any
// message a node can accept can be streamed to them.
const (
	MaxDirectMessageSize = msg.MaxMaxMessageSize
	MaxTopicMessageSize  = gossip.MaxMaxMessageSize
	// MaxGossipTopics bounds gossip.max_topics_per_rpc and
	// gossip.max_topics_per_peer.
	MaxGossipTopics = gossip.MaxMaxTopics
)

// Messages configures direct messages.
type Messages struct {
	MaxMessageSize     int      `toml:"max_message_size" comment:"Largest direct message payload, bytes."`
	SendQueue          int      `toml:"send_queue" comment:"Messages queued per peer before Send waits."`
	RequestTimeout     Duration `toml:"request_timeout" comment:"Default timeout of a request awaiting its reply."`
	MaxHandlers        int      `toml:"max_handlers" comment:"Request handlers running at once, over all peers. When all are busy, reading requests waits."`
	MaxHandlersPerPeer int      `toml:"max_handlers_per_peer" comment:"Request handlers one peer can have running at once (if above max_handlers, max_handlers applies). When a peer has that many, reading its requests waits."`
	ReplyTimeout       Duration `toml:"reply_timeout" comment:"Longest a reply waits for room in the send queue of a requester that does not read; then it is dropped (counted) and the handler slot freed."`
	MaxStreamsPerPeer  int      `toml:"max_streams_per_peer" comment:"Inbound (and outbound) message streams per peer, enforced by the resource manager; a node uses one per peer and direction."`
	SubscriptionBytes  int      `toml:"subscription_max_bytes" comment:"Default bound on the payload bytes queued in one subscription (besides its message count). A message larger than this still fits an empty queue."`
}

// Gossip configures broadcast topics.
type Gossip struct {
	MaxMessageSize   int      `toml:"max_message_size" comment:"Largest broadcast message, bytes."`
	PublishTimeout   Duration `toml:"publish_timeout" comment:"How long a publish into a topic with no peers waits for one."`
	MaxTopicsPerRPC  int      `toml:"max_topics_per_rpc" comment:"Most subscription changes one RPC from a peer may carry (a larger RPC is dropped whole); also the most topics this node may join. All nodes of a network must agree. 1 to 10000."`
	MaxTopicsPerPeer int      `toml:"max_topics_per_peer" comment:"Most topics one peer may be subscribed to at once; further subscriptions from it are ignored. 1 to 10000."`
}

// Log configures structured logs.
type Log struct {
	Level  string `toml:"level" comment:"debug, info, warn or error."`
	Format string `toml:"format" comment:"text or json."`
}

// Profile names.
const (
	ProfileDefault = "default"
	ProfileTest    = "test"
)

// Profiles lists the profile names Init accepts.
func Profiles() []string { return []string{ProfileDefault, ProfileTest} }

// Default returns the configuration of the default profile.
func Default() Config {
	return Config{
		Profile: ProfileDefault,
		Network: netname.Default,
		Addresses: Addresses{
			Listen: []string{
				"/ip4/0.0.0.0/tcp/4101",
				"/ip6/::/tcp/4101",
				"/ip4/0.0.0.0/udp/4101/quic-v1",
				"/ip6/::/udp/4101/quic-v1",
			},
			Announce: []string{},
		},
		Discovery: Discovery{Bootstrap: []string{}, MDNS: true, DHT: "auto", PublicNetwork: true},
		Swarm: Swarm{
			Security:        []string{"tls", "noise"},
			PreferTransport: "tcp",
			ConnMgr:         ConnMgr{LowWater: 64, HighWater: 192, GracePeriod: Duration(30 * time.Second)},
			NATPortMap:      true, AutoNAT: true, HolePunching: true, RelayClient: true, Reachability: "auto",
			RelayLimit:   RelayLimit{Duration: Duration(2 * time.Minute), Data: 128 << 10},
			StaticRelays: []string{},
			PublicRanges: []string{},
			ResourceManager: ResourceManager{
				Enabled:            true,
				MaxMemoryMB:        4096,
				MaxFileDescriptors: 8192,
				MaxConns:           1024,
				MaxStreams:         32768,
				MaxStreamsPerPeer:  16384,
			},
		},
		API: API{MaxTCPConns: 64, ReadHeaderTimeout: Duration(10 * time.Second), ReadTimeout: Duration(time.Minute),
			WriteTimeout: Duration(time.Minute), IdleTimeout: Duration(2 * time.Minute), Dashboard: true},
		Tunnels: Tunnels{DialTimeout: Duration(30 * time.Second), UDPIdleTimeout: Duration(60 * time.Second), DirectWait: Duration(15 * time.Second), MaxConnsPerTunnel: 1024},
		// The services' own defaults: each is defined once, by its package.
		Messages: Messages{
			MaxMessageSize: msg.DefaultMaxMessageSize, SendQueue: msg.DefaultSendQueue, RequestTimeout: Duration(msg.DefaultRequestTimeout),
			MaxHandlers: msg.DefaultMaxConcurrentHandlers, MaxHandlersPerPeer: msg.DefaultMaxHandlersPerPeer, ReplyTimeout: Duration(msg.DefaultReplyTimeout),
			MaxStreamsPerPeer: msg.DefaultMaxStreamsPerPeer, SubscriptionBytes: msg.DefaultSubscribeMaxBytes,
		},
		Gossip: Gossip{MaxMessageSize: gossip.DefaultMaxMessageSize, PublishTimeout: Duration(gossip.DefaultPublishTimeout),
			MaxTopicsPerRPC: gossip.DefaultMaxTopicsPerRPC, MaxTopicsPerPeer: gossip.DefaultMaxTopicsPerPeer},
		Log: Log{Level: "info", Format: "text"},
	}
}

// ForProfile returns the configuration of the named profile.
func ForProfile(name string) (Config, error) {
	c := Default()
	switch name {
	case ProfileDefault, "":
		return c, nil
	case ProfileTest:
		// Loopback only, nothing that reaches outside: for tests and local experiments.
		c.Profile = ProfileTest
		c.Addresses.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.Discovery = Discovery{Bootstrap: []string{}, MDNS: false, DHT: "server", PublicNetwork: false}
		c.Swarm.NATPortMap, c.Swarm.AutoNAT, c.Swarm.HolePunching, c.Swarm.RelayClient = false, false, false, false
		return c, nil
	}
	return Config{}, fmt.Errorf("profile %q: expected one of %s", name, strings.Join(Profiles(), ", "))
}

// Ranges of the numeric settings (inclusive). Each is wide enough for any
// sane use and narrow enough that no computation on it overflows (libp2p
// works in bytes: max_memory_mb << 20 must fit an int64).
const (
	MaxConnections        = 1 << 20        // swarm.resource_manager.max_conns, swarm.conn_mgr.*_water
	MaxFileDescriptors    = 1 << 20        // swarm.resource_manager.max_file_descriptors (Linux's default nr_open)
	MinMemoryMB           = 16             // swarm.resource_manager.max_memory_mb
	MaxMemoryMB           = 1 << 20        // 1 TiB
	MaxStreams            = 1 << 24        // swarm.resource_manager.max_streams and max_streams_per_peer
	MaxRelayData          = 1 << 40        // swarm.relay_limit.data, bytes
	MaxSendQueue          = 1 << 16        // messages.send_queue
	MaxSettingTimeout     = time.Hour      // dial, request and publish timeouts; the API caps timeout_ms at the same hour
	MaxLongDuration       = 24 * time.Hour // relay_limit.duration, udp_idle_timeout
	MinSettingDuration    = time.Millisecond
	MinAPIIdleTimeout     = 31 * time.Second // above the API client's 30 s idle-connection timeout
	MaxConnMgrGracePeriod = time.Hour
)

// intRange is one integer setting and its inclusive range.
type intRange struct {
	key      string
	v        int64
	min, max int64
	note     string // appended to the range, e.g. "(0: no limit)"
}

// durRange is one duration setting and its inclusive range.
type durRange struct {
	key      string
	v        Duration
	min, max time.Duration
	note     string
}

// ranges lists every numeric setting with its range. A new int, int64 or
// Duration setting must be added here: TestEveryNumericSettingIsRanged
// finds the ones that are not.
func (c *Config) ranges() ([]intRange, []durRange) {
	rm, cm, rl := c.Swarm.ResourceManager, c.Swarm.ConnMgr, c.Swarm.RelayLimit
	ints := []intRange{
		{key: "swarm.conn_mgr.low_water", v: int64(cm.LowWater), min: 0, max: MaxConnections},
		{key: "swarm.conn_mgr.high_water", v: int64(cm.HighWater), min: 1, max: MaxConnections},
		{key: "swarm.resource_manager.max_memory_mb", v: int64(rm.MaxMemoryMB), min: MinMemoryMB, max: MaxMemoryMB},
		{key: "swarm.resource_manager.max_file_descriptors", v: int64(rm.MaxFileDescriptors), min: 16, max: MaxFileDescriptors},
		{key: "swarm.resource_manager.max_conns", v: int64(rm.MaxConns), min: 1, max: MaxConnections},
		{key: "swarm.resource_manager.max_streams", v: int64(rm.MaxStreams), min: 1, max: MaxStreams},
		{key: "swarm.resource_manager.max_streams_per_peer", v: int64(rm.MaxStreamsPerPeer), min: 1, max: MaxStreams},
		{key: "swarm.relay_limit.data", v: rl.Data, min: 0, max: MaxRelayData, note: " (0: no limit)"},
		{key: "messages.max_message_size", v: int64(c.Messages.MaxMessageSize), min: 1, max: MaxDirectMessageSize},
		{key: "messages.send_queue", v: int64(c.Messages.SendQueue), min: 1, max: MaxSendQueue},
		{key: "messages.max_handlers", v: int64(c.Messages.MaxHandlers), min: 1, max: 65536},
		{key: "messages.max_handlers_per_peer", v: int64(c.Messages.MaxHandlersPerPeer), min: 1, max: 65536},
		{key: "messages.max_streams_per_peer", v: int64(c.Messages.MaxStreamsPerPeer), min: 1, max: 1024},
		{key: "messages.subscription_max_bytes", v: int64(c.Messages.SubscriptionBytes), min: 1, max: 1 << 34},
		{key: "gossip.max_message_size", v: int64(c.Gossip.MaxMessageSize), min: 1, max: MaxTopicMessageSize},
		{key: "api.max_tcp_conns", v: int64(c.API.MaxTCPConns), min: 1, max: 4096},
		{key: "tunnels.max_conns_per_tunnel", v: int64(c.Tunnels.MaxConnsPerTunnel), min: 1, max: MaxTunnelConns},
		{key: "gossip.max_topics_per_rpc", v: int64(c.Gossip.MaxTopicsPerRPC), min: 1, max: MaxGossipTopics},
		{key: "gossip.max_topics_per_peer", v: int64(c.Gossip.MaxTopicsPerPeer), min: 1, max: MaxGossipTopics},
	}
	durs := []durRange{
		{key: "swarm.conn_mgr.grace_period", v: cm.GracePeriod, min: 0, max: MaxConnMgrGracePeriod},
		{key: "swarm.relay_limit.duration", v: rl.Duration, min: 0, max: MaxLongDuration, note: " (0: no limit)"},
		{key: "api.read_header_timeout", v: c.API.ReadHeaderTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
		{key: "api.read_timeout", v: c.API.ReadTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
		{key: "api.write_timeout", v: c.API.WriteTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
		{key: "api.idle_timeout", v: c.API.IdleTimeout, min: MinAPIIdleTimeout, max: MaxSettingTimeout},
		{key: "tunnels.dial_timeout", v: c.Tunnels.DialTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
		{key: "tunnels.udp_idle_timeout", v: c.Tunnels.UDPIdleTimeout, min: MinSettingDuration, max: MaxLongDuration},
		{key: "tunnels.direct_wait", v: c.Tunnels.DirectWait, min: 0, max: time.Minute, note: " (0: do not wait)"},
		{key: "messages.request_timeout", v: c.Messages.RequestTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
		{key: "messages.reply_timeout", v: c.Messages.ReplyTimeout, min: MinSettingDuration, max: time.Minute},
		{key: "gossip.publish_timeout", v: c.Gossip.PublishTimeout, min: MinSettingDuration, max: MaxSettingTimeout},
	}
	return ints, durs
}

// fmtDuration writes a duration without trailing zero units: 24h, 1h30m, 10s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Validate checks every setting. The error names each bad one with what it
// expects and what it got, e.g.
// "swarm.resource_manager.max_memory_mb: expected 16..1048576, got 99999999999".
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, want string, got any) {
		errs = append(errs, fmt.Errorf("%s: expected %s, got %v", key, want, got))
	}
	if !netname.Valid(c.Network) {
		bad("network", netname.Rule, fmt.Sprintf("%q", c.Network))
	}
	if len(c.Addresses.Listen) == 0 {
		bad("addresses.listen", "at least one multiaddr", "[]")
	}
	for _, s := range c.Addresses.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad("addresses.listen", "a multiaddr such as /ip4/0.0.0.0/tcp/4101 ("+err.Error()+")", fmt.Sprintf("%q", s))
		}
	}
	for _, s := range c.Addresses.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad("addresses.announce", "a multiaddr ("+err.Error()+")", fmt.Sprintf("%q", s))
		}
	}
	for _, kl := range []struct {
		key  string
		list []string
	}{{"discovery.bootstrap", c.Discovery.Bootstrap}, {"swarm.static_relays", c.Swarm.StaticRelays}} {
		for _, s := range kl.list {
			if _, err := peer.AddrInfoFromString(s); err != nil {
				bad(kl.key, "a multiaddr ending in /p2p/<peer-id> ("+err.Error()+")", fmt.Sprintf("%q", s))
			}
		}
	}
	switch c.Discovery.DHT {
	case "auto", "server", "client", "off":
	default:
		bad("discovery.dht", "auto, server, client or off", fmt.Sprintf("%q", c.Discovery.DHT))
	}
	switch c.Swarm.Reachability {
	case "auto", "public", "private":
	default:
		bad("swarm.reachability", "auto, public or private", fmt.Sprintf("%q", c.Swarm.Reachability))
	}
	if len(c.Swarm.PublicRanges) > MaxPublicRanges {
		bad("swarm.public_ranges", fmt.Sprintf("at most %d CIDRs", MaxPublicRanges), len(c.Swarm.PublicRanges))
	}
	for _, s := range c.Swarm.PublicRanges {
		if _, err := ParsePublicRange(s); err != nil {
			bad("swarm.public_ranges", "a CIDR such as 100.64.0.0/10 with no host bits set, outside loopback ("+err.Error()+")", fmt.Sprintf("%q", s))
		}
	}
	if c.Swarm.PreferTransport != "tcp" && c.Swarm.PreferTransport != "quic" {
		bad("swarm.prefer_transport", "tcp or quic", fmt.Sprintf("%q", c.Swarm.PreferTransport))
	}
	if len(c.Swarm.Security) == 0 {
		bad("swarm.security", "at least one of noise, tls", "[]")
	}
	for _, s := range c.Swarm.Security {
		if s != "noise" && s != "tls" {
			bad("swarm.security", "noise or tls", fmt.Sprintf("%q", s))
		}
	}
	ints, durs := c.ranges()
	for _, r := range ints {
		if r.v < r.min || r.v > r.max {
			bad(r.key, fmt.Sprintf("%d..%d%s", r.min, r.max, r.note), r.v)
		}
	}
	for _, r := range durs {
		if d := r.v.Std(); d < r.min || d > r.max {
			bad(r.key, fmt.Sprintf("a duration %s..%s%s", fmtDuration(r.min), fmtDuration(r.max), r.note), d)
		}
	}
	if cm := c.Swarm.ConnMgr; cm.LowWater > cm.HighWater && cm.HighWater > 0 {
		bad("swarm.conn_mgr.low_water", fmt.Sprintf("at most swarm.conn_mgr.high_water (%d)", cm.HighWater), cm.LowWater)
	}
	if c.API.TCP != "" {
		if err := checkLoopbackAddrPort(c.API.TCP); err != nil {
			bad("api.tcp", "a loopback IP address and port such as 127.0.0.1:5050 or [::1]:5050 (port 0 picks one), or empty: "+err.Error(), fmt.Sprintf("%q", c.API.TCP))
		}
	}
	// A maximal message is read into memory reserved in the resource
	// manager, whose system and peer limits are max_memory_mb: leave room.
	if rm := c.Swarm.ResourceManager; rm.Enabled &&
		2*(int64(c.Messages.MaxMessageSize)+256) > int64(rm.MaxMemoryMB)<<20 {
		bad("messages.max_message_size", fmt.Sprintf("at most half of swarm.resource_manager.max_memory_mb (%d MiB), less 256 bytes", rm.MaxMemoryMB), c.Messages.MaxMessageSize)
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "debug, info, warn or error", fmt.Sprintf("%q", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "text or json", fmt.Sprintf("%q", c.Log.Format))
	}
	return errors.Join(errs...)
}

// MaxPublicRanges bounds swarm.public_ranges.
const MaxPublicRanges = 64

// ParsePublicRange reads one swarm.public_ranges entry: a canonical CIDR
// (no host bits set, no zone) that does not touch loopback, which no
// network setting may make public.
func ParsePublicRange(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR")
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("host bits set; did you mean %s?", p.Masked())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped IPv6 is not accepted; write the IPv4 CIDR")
	}
	if p.Addr().Is6() && !netip.MustParsePrefix("2000::/3").Contains(p.Addr()) {
		// go-multiaddr counts only global unicast (2000::/3) IPv6 as public,
		// whatever its private list says.
		return netip.Prefix{}, errors.New("an IPv6 range must lie within 2000::/3, the only IPv6 libp2p can treat as public")
	}
	for _, lo := range []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")} {
		if p.Overlaps(lo) {
			return netip.Prefix{}, fmt.Errorf("overlaps loopback %s", lo)
		}
	}
	return p, nil
}

// ParseLevel turns a level name into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("level %q: expected debug, info, warn or error", s)
	}
	return l, nil
}

// checkLoopbackAddrPort accepts only an IP literal in 127.0.0.0/8 or ::1
// with a port: no host name (not even localhost, which a resolver may map
// elsewhere), no zone, no IPv4-mapped IPv6.
func checkLoopbackAddrPort(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return errors.New("not an IP:port (host names are not accepted)")
	}
	a := ap.Addr()
	switch {
	case a.Zone() != "":
		return errors.New("an IPv6 zone is not accepted")
	case a.Is4() && a.IsLoopback(), a == netip.IPv6Loopback():
		return nil
	}
	return fmt.Errorf("%s is not a loopback address", a)
}

// Marshal renders the configuration as documented TOML.
func (c *Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# warren configuration. Every setting is written out; see docs/config.md.\n\n")
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse reads TOML over the values of the profile it names (a setting left
// out keeps the profile's value; no profile: the default profile), rejects
// unknown keys and validates the result. Its errors name the line and the
// setting as the file spells them: "config.toml:3: unknown setting
// \"netwrok\"".
func Parse(data []byte) (Config, error) {
	var head struct {
		Profile string `toml:"profile"`
	}
	if err := toml.NewDecoder(bytes.NewReader(data)).Decode(&head); err != nil {
		return Config{}, decodeError(data, err)
	}
	c, err := ForProfile(head.Profile)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(data, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// decodeError words a TOML decoding error for a person: the file and line,
// then what is wrong in the setting's own name.
func decodeError(data []byte, err error) error {
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) && len(sme.Errors) > 0 {
		msgs := make([]string, 0, len(sme.Errors))
		for _, de := range sme.Errors {
			row, _ := de.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown setting %q (see docs/config.md)", ConfigFile, row, strings.Join(de.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		got := lineValue(data, row)
		if want := expectedKind(key); want != "" && got != "" {
			return fmt.Errorf("%s:%d: %s: expected %s, got %s", ConfigFile, row, key, want, got)
		}
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key != "" {
			return fmt.Errorf("%s:%d: %s: %s", ConfigFile, row, key, msg)
		}
		return fmt.Errorf("%s:%d: %s", ConfigFile, row, msg)
	}
	return fmt.Errorf("%s: %w", ConfigFile, err)
}

// lineValue returns what follows the '=' on line row (1-based) of data, or "".
func lineValue(data []byte, row int) string {
	lines := strings.Split(string(data), "\n")
	if row < 1 || row > len(lines) {
		return ""
	}
	_, v, ok := strings.Cut(lines[row-1], "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}

// expectedKind names, for a person, the kind of value the setting at the
// dotted TOML key takes ("" for a key that is not a setting).
func expectedKind(key string) string {
	if key == "" {
		return ""
	}
	t := reflect.TypeOf(Config{})
	for _, part := range strings.Split(key, ".") {
		if t.Kind() != reflect.Struct {
			return ""
		}
		found := false
		for i := range t.NumField() {
			if f := t.Field(i); strings.Split(f.Tag.Get("toml"), ",")[0] == part {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return ""
		}
	}
	switch {
	case t == reflect.TypeOf(Duration(0)):
		return "a duration such as 30s or 2m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string in quotes"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return `a list of strings such as ["a", "b"]`
	}
	return ""
}
