// Package warren is the library face of warren: New gives an application the
// same node the daemon runs, in-process. A Node is the libp2p host with
// discovery (package node) plus the capabilities built on it: direct messages
// and the dispatcher (package msg), broadcast topics (package gossip) and TCP/UDP
// tunnels (package tunnel). The daemon (cmd/warren) only adds the repo lock and
// the control API (package api) on top.
package warren

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
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

// Options configures New.
type Options struct {
	Config config.Config
	Key    crypto.PrivKey // the node's identity
	// RepoDir is where persistent state (saved tunnels) lives; "" keeps
	// nothing on disk.
	RepoDir string
	Logger  *slog.Logger
	// Registry receives libp2p's and warren's metrics; nil makes a new one.
	Registry *prometheus.Registry
}

// Node is a running warren node.
type Node struct {
	*node.Node
	Metrics *prometheus.Registry
	Msg     *msg.Service    // direct messages, dispatcher, request/response
	Gossip  *gossip.Service // broadcast topics (GossipSub)
	Tunnels *tunnel.Manager // TCP and UDP services over libp2p streams

	log     *slog.Logger
	closers []func() error // closed in reverse order
	once    sync.Once
	err     error
}

// New starts a node from a config and an identity. ctx bounds the start
// (restoring tunnels, for one); the node then runs until Close.
func New(ctx context.Context, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
		Services: services,
	})
	if err != nil {
		return nil, err
	}
	n := &Node{Node: nd, Metrics: reg, log: log}
	n.closers = append(n.closers, nd.Close)
	if err := n.startServices(ctx, opts); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// Open starts a node from an opened repo (see config.Open and config.Init).
// It does not lock the repo; the daemon does.
func Open(ctx context.Context, repo *config.Repo, log *slog.Logger) (*Node, error) {
	return New(ctx, Options{Config: repo.Config, Key: repo.Key, RepoDir: repo.Dir, Logger: log})
}

// Close stops every service and the node, waiting for their goroutines.
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
