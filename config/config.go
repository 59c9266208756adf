// Package config owns warren's settings: the Config type with its documented
// defaults and profiles, validation, and the repo on disk (identity key,
// config file, lock, API endpoint record, token and saved tunnels).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"
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
}

// Swarm configures the libp2p host.
type Swarm struct {
	Security        []string        `toml:"security" comment:"Security transports in order of preference: noise, tls. TLS first uses AES-GCM, cheaper than Noise's ChaCha20 on CPUs with AES instructions."`
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
	TCP string `toml:"tcp" comment:"Also serve the API on this loopback TCP address (e.g. 127.0.0.1:5050, port 0 allowed), with a bearer token kept in the repo. Empty: unix socket only."`
}

// Tunnels configures TCP and UDP tunnels.
type Tunnels struct {
	DialTimeout    Duration `toml:"dial_timeout" comment:"How long a forward waits to open a stream to the remote peer."`
	UDPIdleTimeout Duration `toml:"udp_idle_timeout" comment:"A UDP flow with no datagram for this long is closed."`
}

// The largest messages.max_message_size and gossip.max_message_size
// accepted. Clients of the API size their buffers from these, so that any
// message a node can accept can be streamed to them.
const (
	MaxDirectMessageSize = 64 << 20
	MaxTopicMessageSize  = 16 << 20
)

// Messages configures direct messages.
type Messages struct {
	MaxMessageSize     int      `toml:"max_message_size" comment:"Largest direct message payload, bytes."`
	SendQueue          int      `toml:"send_queue" comment:"Messages queued per peer before Send waits."`
	RequestTimeout     Duration `toml:"request_timeout" comment:"Default timeout of a request awaiting its reply."`
	MaxHandlers        int      `toml:"max_handlers" comment:"Request handlers running at once, over all peers. When all are busy, reading requests waits."`
	MaxHandlersPerPeer int      `toml:"max_handlers_per_peer" comment:"Request handlers one peer can have running at once (at most max_handlers). When a peer has that many, reading its requests waits."`
	ReplyTimeout       Duration `toml:"reply_timeout" comment:"Longest a reply waits for room in the send queue of a requester that does not read; then it is dropped (counted) and the handler slot freed."`
	MaxStreamsPerPeer  int      `toml:"max_streams_per_peer" comment:"Inbound (and outbound) message streams per peer, enforced by the resource manager; a node uses one per peer and direction."`
	SubscriptionBytes  int      `toml:"subscription_max_bytes" comment:"Default bound on the payload bytes queued in one subscription (besides its message count). A message larger than this still fits an empty queue."`
}

// Gossip configures broadcast topics.
type Gossip struct {
	MaxMessageSize int      `toml:"max_message_size" comment:"Largest broadcast message, bytes."`
	PublishTimeout Duration `toml:"publish_timeout" comment:"How long a publish into a topic with no peers waits for one."`
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
		Network: "warren",
		Addresses: Addresses{
			Listen: []string{
				"/ip4/0.0.0.0/tcp/4101",
				"/ip6/::/tcp/4101",
				"/ip4/0.0.0.0/udp/4101/quic-v1",
				"/ip6/::/udp/4101/quic-v1",
			},
			Announce: []string{},
		},
		Discovery: Discovery{Bootstrap: []string{}, MDNS: true, DHT: "auto"},
		Swarm: Swarm{
			Security:        []string{"tls", "noise"},
			PreferTransport: "tcp",
			ConnMgr:         ConnMgr{LowWater: 64, HighWater: 192, GracePeriod: Duration(30 * time.Second)},
			NATPortMap:      true, AutoNAT: true, HolePunching: true, RelayClient: true, Reachability: "auto",
			RelayLimit:   RelayLimit{Duration: Duration(2 * time.Minute), Data: 128 << 10},
			StaticRelays: []string{},
			ResourceManager: ResourceManager{
				Enabled:            true,
				MaxMemoryMB:        4096,
				MaxFileDescriptors: 8192,
				MaxConns:           1024,
				MaxStreams:         32768,
				MaxStreamsPerPeer:  16384,
			},
		},
		Tunnels: Tunnels{DialTimeout: Duration(30 * time.Second), UDPIdleTimeout: Duration(60 * time.Second)},
		Messages: Messages{
			MaxMessageSize: 4 << 20, SendQueue: 4096, RequestTimeout: Duration(10 * time.Second),
			MaxHandlers: 64, MaxHandlersPerPeer: 8, ReplyTimeout: Duration(2 * time.Second),
			MaxStreamsPerPeer: 8, SubscriptionBytes: 64 << 20,
		},
		Gossip: Gossip{MaxMessageSize: 1 << 20, PublishTimeout: Duration(10 * time.Second)},
		Log:    Log{Level: "info", Format: "text"},
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
		c.Addresses.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.Discovery = Discovery{Bootstrap: []string{}, MDNS: false, DHT: "server"}
		c.Swarm.NATPortMap, c.Swarm.AutoNAT, c.Swarm.HolePunching, c.Swarm.RelayClient = false, false, false, false
		return c, nil
	}
	return Config{}, fmt.Errorf("profile %q: expected one of %s", name, strings.Join(Profiles(), ", "))
}

var networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks every setting and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, v any, want string) {
		errs = append(errs, fmt.Errorf("config %s = %v: expected %s", key, v, want))
	}
	if !networkName.MatchString(c.Network) {
		bad("network", fmt.Sprintf("%q", c.Network), "1-64 characters of letters, digits, '.', '_' or '-'")
	}
	if len(c.Addresses.Listen) == 0 {
		bad("addresses.listen", "[]", "at least one multiaddr")
	}
	for _, s := range c.Addresses.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad("addresses.listen", fmt.Sprintf("%q", s), "a multiaddr such as /ip4/0.0.0.0/tcp/4101 ("+err.Error()+")")
		}
	}
	for _, s := range c.Addresses.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad("addresses.announce", fmt.Sprintf("%q", s), "a multiaddr ("+err.Error()+")")
		}
	}
	for key, list := range map[string][]string{"discovery.bootstrap": c.Discovery.Bootstrap, "swarm.static_relays": c.Swarm.StaticRelays} {
		for _, s := range list {
			if _, err := peer.AddrInfoFromString(s); err != nil {
				bad(key, fmt.Sprintf("%q", s), "a multiaddr ending in /p2p/<peer-id> ("+err.Error()+")")
			}
		}
	}
	switch c.Discovery.DHT {
	case "auto", "server", "client", "off":
	default:
		bad("discovery.dht", fmt.Sprintf("%q", c.Discovery.DHT), "auto, server, client or off")
	}
	if c.Swarm.RelayLimit.Duration < 0 || c.Swarm.RelayLimit.Data < 0 {
		bad("swarm.relay_limit", fmt.Sprintf("duration=%v data=%d", c.Swarm.RelayLimit.Duration.Std(), c.Swarm.RelayLimit.Data), "values >= 0 (0: no limit)")
	}
	switch c.Swarm.Reachability {
	case "auto", "public", "private":
	default:
		bad("swarm.reachability", fmt.Sprintf("%q", c.Swarm.Reachability), "auto, public or private")
	}
	if c.Swarm.PreferTransport != "tcp" && c.Swarm.PreferTransport != "quic" {
		bad("swarm.prefer_transport", fmt.Sprintf("%q", c.Swarm.PreferTransport), "tcp or quic")
	}
	if len(c.Swarm.Security) == 0 {
		bad("swarm.security", "[]", "at least one of noise, tls")
	}
	for _, s := range c.Swarm.Security {
		if s != "noise" && s != "tls" {
			bad("swarm.security", fmt.Sprintf("%q", s), "noise or tls")
		}
	}
	cm := c.Swarm.ConnMgr
	if cm.LowWater < 0 || cm.HighWater <= 0 || cm.LowWater > cm.HighWater {
		bad("swarm.conn_mgr", fmt.Sprintf("low_water=%d high_water=%d", cm.LowWater, cm.HighWater), "0 <= low_water <= high_water and high_water > 0")
	}
	if cm.GracePeriod < 0 {
		bad("swarm.conn_mgr.grace_period", cm.GracePeriod.Std(), "a duration >= 0")
	}
	if rm := c.Swarm.ResourceManager; rm.Enabled {
		for key, v := range map[string]int{"max_memory_mb": rm.MaxMemoryMB, "max_file_descriptors": rm.MaxFileDescriptors,
			"max_conns": rm.MaxConns, "max_streams": rm.MaxStreams, "max_streams_per_peer": rm.MaxStreamsPerPeer} {
			if v <= 0 {
				bad("swarm.resource_manager."+key, v, "a number > 0")
			}
		}
	}
	if c.API.TCP != "" && !isLoopbackHostPort(c.API.TCP) {
		bad("api.tcp", fmt.Sprintf("%q", c.API.TCP), "a loopback host:port such as 127.0.0.1:5050, or empty")
	}
	if c.Tunnels.DialTimeout <= 0 {
		bad("tunnels.dial_timeout", c.Tunnels.DialTimeout.Std(), "a duration > 0")
	}
	if c.Tunnels.UDPIdleTimeout <= 0 {
		bad("tunnels.udp_idle_timeout", c.Tunnels.UDPIdleTimeout.Std(), "a duration > 0")
	}
	if c.Messages.MaxMessageSize <= 0 || c.Messages.MaxMessageSize > MaxDirectMessageSize {
		bad("messages.max_message_size", c.Messages.MaxMessageSize, fmt.Sprintf("1 to %d bytes", MaxDirectMessageSize))
	}
	if c.Messages.SendQueue <= 0 {
		bad("messages.send_queue", c.Messages.SendQueue, "a number > 0")
	}
	if c.Messages.RequestTimeout <= 0 {
		bad("messages.request_timeout", c.Messages.RequestTimeout.Std(), "a duration > 0")
	}
	// A maximal message is read into memory reserved in the resource
	// manager, whose system and peer limits are max_memory_mb: leave room.
	if rm := c.Swarm.ResourceManager; rm.Enabled && rm.MaxMemoryMB > 0 &&
		2*(int64(c.Messages.MaxMessageSize)+256) > int64(rm.MaxMemoryMB)<<20 {
		bad("messages.max_message_size", c.Messages.MaxMessageSize,
			fmt.Sprintf("at most half of swarm.resource_manager.max_memory_mb (%d MiB), less 256 bytes", rm.MaxMemoryMB))
	}
	if m := c.Messages; m.MaxHandlers < 1 || m.MaxHandlers > 65536 {
		bad("messages.max_handlers", m.MaxHandlers, "1 to 65536")
	}
	if m := c.Messages; m.MaxHandlersPerPeer < 1 || m.MaxHandlersPerPeer > max(m.MaxHandlers, 1) {
		bad("messages.max_handlers_per_peer", m.MaxHandlersPerPeer, fmt.Sprintf("1 to messages.max_handlers (%d)", m.MaxHandlers))
	}
	if d := c.Messages.ReplyTimeout; d <= 0 || d.Std() > time.Minute {
		bad("messages.reply_timeout", d.Std(), "a duration > 0 and at most 1m")
	}
	if n := c.Messages.MaxStreamsPerPeer; n < 1 || n > 1024 {
		bad("messages.max_streams_per_peer", n, "1 to 1024")
	}
	if n := c.Messages.SubscriptionBytes; n < 1 || n > 1<<40 {
		bad("messages.subscription_max_bytes", n, "1 to 1099511627776 bytes")
	}
	if c.Gossip.MaxMessageSize <= 0 || c.Gossip.MaxMessageSize > MaxTopicMessageSize {
		bad("gossip.max_message_size", c.Gossip.MaxMessageSize, fmt.Sprintf("1 to %d bytes", MaxTopicMessageSize))
	}
	if c.Gossip.PublishTimeout <= 0 {
		bad("gossip.publish_timeout", c.Gossip.PublishTimeout.Std(), "a duration > 0")
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		errs = append(errs, fmt.Errorf("config log.level: %w", err))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", fmt.Sprintf("%q", c.Log.Format), "text or json")
	}
	return errors.Join(errs...)
}

// ParseLevel turns a level name into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("level %q: expected debug, info, warn or error", s)
	}
	return l, nil
}

func isLoopbackHostPort(s string) bool {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return false
	}
	host := strings.Trim(s[:i], "[]")
	return host == "127.0.0.1" || host == "::1" || host == "localhost" || strings.HasPrefix(host, "127.")
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

// Parse reads TOML over the defaults (a setting left out keeps its default),
// rejects unknown keys and validates the result.
func Parse(data []byte) (Config, error) {
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return Config{}, fmt.Errorf("unknown setting in config: %s", strings.TrimSpace(sme.String()))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return Config{}, fmt.Errorf("config line %d column %d: %w", row, col, err)
		}
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
