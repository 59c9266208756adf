// Package warren is the library face of warren: New gives an application the
// same node the daemon runs, in-process. A Node is the libp2p host with
// discovery (package node) plus the capabilities built on it: direct messages
// and the dispatcher (package msg), broadcast topics (package gossip) and TCP/UDP
// tunnels (package tunnel). The daemon (cmd/warren) only adds the repo lock and
// the control API (package api) on top.
package warren

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/gossip"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/node"
	"github.com/warren-p2p/warren/tunnel"
)

// Version is warren's version, reported by `warren version` and the API.
const Version = "0.1.0"

// Options configures New. The zero value works: it gives a node for tests
// and local experiments (see New).
type Options struct {
	// Config is the node's configuration; the zero Config means the
	// loopback test profile (config.ForProfile(config.ProfileTest)).
	Config config.Config
	// Key is the node's identity; nil makes a new in-memory Ed25519 key.
	Key crypto.PrivKey
	// RepoDir is where persistent state (saved tunnels) lives; "" keeps
	// nothing on disk.
	RepoDir string
	Logger  *slog.Logger
	// Registry receives libp2p's and warren's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// Libp2pOptions are added after those the config gives; they must not
	// repeat one libp2p accepts only once (the identity, for one).
	Libp2pOptions []libp2p.Option
	// Host, if set, is the libp2p host to run on instead of building one
	// from the config (a mocknet host in tests: package warrentest). The
	// config's addresses and swarm settings and Libp2pOptions do not apply;
	// Key must be the host's or nil. Close closes it.
	Host host.Host
	// Protocols are the application's own protocols, served from the
	// moment New returns and closed first by Close, in this order, before
	// warren's services and the host.
	Protocols []Protocol
}

// Protocol is an application protocol run by the node, like go-ethereum's
// p2p.Protocol or a handler of iroh's router: the node serves ID with
// Handler, and on Close stops serving it, then calls Close (if set).
// A handler gets untrusted peers' streams: it must bound what it reads and
// reset or close the stream when done.
type Protocol struct {
	ID      protocol.ID
	Handler network.StreamHandler
	Close   func() error
}

// Node is a running warren node. Its parts are reached through methods;
// Close stops all of them.
type Node struct {
	node    *node.Node
	metrics *prometheus.Registry
	msg     *msg.Service
	gossip  *gossip.Service
	tunnels *tunnel.Manager

	log     *slog.Logger
	closers []func() error // closed in reverse order
	once    sync.Once
	err     error
}

// New starts a node from a config and an identity. ctx bounds the start
// (restoring tunnels, for one); the node then runs until Close.
//
// New(ctx, Options{}) starts a node for tests: a new in-memory Ed25519 key
// and the test profile, which listens on 127.0.0.1 only (TCP and QUIC, on
// random ports), with no mDNS, no UPnP/NAT-PMP, no AutoNAT, no relay client,
// no hole punching and no bootstrap peers, so it reaches no public network;
// its DHT serves the peers it is connected to.
func New(ctx context.Context, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reflect.ValueOf(opts.Config).IsZero() {
		cfg, err := config.ForProfile(config.ProfileTest)
		if err != nil {
			return nil, err
		}
		opts.Config = cfg
	}
	if opts.Key == nil {
		if opts.Host != nil {
			opts.Key = opts.Host.Peerstore().PrivKey(opts.Host.ID())
		} else {
			key, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("start node: identity key: %w", err)
			}
			opts.Key = key
		}
	}
	for i, p := range opts.Protocols {
		if p.ID == "" || p.Handler == nil {
			return nil, fmt.Errorf("start node: Options.Protocols[%d] %q: expected an ID and a Handler", i, p.ID)
		}
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	// The resource manager is built with the node, so the limits of
	// warren's own services are computed from the config first.
	services, err := serviceLimits(opts.Config)
	if err != nil {
		return nil, err
	}
	nd, err := node.New(ctx, opts.Config, opts.Key, node.Options{
		Logger: log.With("component", "node"), Registerer: reg, UserAgent: "warren/" + Version,
		Services: services, Libp2p: opts.Libp2pOptions, Host: opts.Host,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{node: nd, metrics: reg, log: log}
	n.closers = append(n.closers, nd.Close)
	if err := n.startServices(ctx, opts); err != nil {
		_ = n.Close()
		return nil, err
	}
	n.startProtocols(opts.Protocols)
	return n, nil
}

// startProtocols serves the application's protocols. Close stops serving
// all of them, then closes them in the order given.
func (n *Node) startProtocols(ps []Protocol) {
	if len(ps) == 0 {
		return
	}
	h := n.node.Host()
	for _, p := range ps {
		h.SetStreamHandler(p.ID, p.Handler)
	}
	n.closers = append(n.closers, func() error {
		for _, p := range ps {
			h.RemoveStreamHandler(p.ID)
		}
		var errs []error
		for _, p := range ps {
			if p.Close == nil {
				continue
			}
			if err := p.Close(); err != nil {
				errs = append(errs, fmt.Errorf("protocol %s: %w", p.ID, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Open starts a node from an opened repo (see config.Open and config.Init).
// It does not lock the repo; the daemon does.
func Open(ctx context.Context, repo *config.Repo, log *slog.Logger) (*Node, error) {
	return New(ctx, Options{Config: repo.Config, Key: repo.Key, RepoDir: repo.Dir, Logger: log})
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.node.ID() }

// Host returns the libp2p host. Closing it directly skips the services;
// use Close.
func (n *Node) Host() host.Host { return n.node.Host() }

// Config returns the configuration the node runs with.
func (n *Node) Config() config.Config { return n.node.Config() }

// Addrs returns the node's multiaddrs, each ending in /p2p/<id>.
func (n *Node) Addrs() []multiaddr.Multiaddr { return n.node.Addrs() }

// AddrInfo returns the node's peer ID and its (listen) addresses, as
// another node's Connect takes them.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()} }

// Connect dials a peer. One given without addresses is found through the
// peerstore, else the DHT (see ConnectPeer). Errors: node.ErrSelf,
// node.ErrNoAddress, node.ErrNoPeersToAsk, *node.OtherNetworkError.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error { return n.node.Connect(ctx, ai) }

// ConnectPeer connects to a peer known only by its ID, finding its
// addresses in the peerstore or the DHT (through the peers this node is
// connected to).
func (n *Node) ConnectPeer(ctx context.Context, p peer.ID) error {
	return n.node.Connect(ctx, peer.AddrInfo{ID: p})
}

// Disconnect closes every connection to a peer.
func (n *Node) Disconnect(p peer.ID) error { return n.node.Disconnect(p) }

// Peers lists the connected peers.
func (n *Node) Peers() []node.PeerInfo { return n.node.Peers() }

// Ping measures count round trips to a peer, connecting to it first.
func (n *Node) Ping(ctx context.Context, p peer.ID, count int) ([]time.Duration, error) {
	return n.node.Ping(ctx, p, count)
}

// Status says why the node can or cannot be reached: reachability and how
// it was learnt, addresses, port mapping, relay reservations, hole punches
// and the connected peers.
func (n *Node) Status() node.Status { return n.node.Status() }

// DHT returns the Kademlia DHT, or nil when it is off.
func (n *Node) DHT() *dht.IpfsDHT { return n.node.DHT() }

// Msg returns the direct-message service: messages, dispatcher,
// request/response.
func (n *Node) Msg() *msg.Service { return n.msg }

// Gossip returns the broadcast-topic service (GossipSub).
func (n *Node) Gossip() *gossip.Service { return n.gossip }

// Tunnels returns the TCP/UDP tunnel manager.
func (n *Node) Tunnels() *tunnel.Manager { return n.tunnels }

// Metrics returns the registry of libp2p's and warren's metrics.
func (n *Node) Metrics() *prometheus.Registry { return n.metrics }

// Close stops the application's protocols, every service and the host, in
// that order, waiting for their goroutines.
func (n *Node) Close() error {
	n.once.Do(func() {
		var errs []error
		for i := len(n.closers) - 1; i >= 0; i-- {
			if err := n.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		n.err = errors.Join(errs...)
		if n.err != nil {
			n.err = fmt.Errorf("close warren node: %w", n.err)
		}
	})
	return n.err
}
