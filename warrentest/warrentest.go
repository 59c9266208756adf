// Package warrentest gives applications in-process warren networks for
// their own tests: nodes on libp2p's in-memory mocknet (no sockets, no
// discovery beyond the network itself), connected to one another and closed
// when the test ends.
//
//	func TestChat(t *testing.T) {
//		a, b := warrentest.Pair(t)
//		sub, _ := b.Msg().Subscribe("chat", msg.SubscribeOptions{})
//		_ = a.Msg().Send(ctx, b.ID(), "chat", []byte("hi"), msg.SendOptions{})
//		m, _ := sub.Next(ctx)
//		...
//	}
package warrentest

import (
	"context"
	"fmt"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/internal/testutil"
)

// ConnectTimeout bounds connecting the nodes of a Network to one another.
const ConnectTimeout = 30 * time.Second

// Option adjusts the Options of node i (0-based) before it starts: set its
// Config (the test profile by default), Protocols or Logger. Options.Host
// is the node's mocknet host and must stay.
type Option func(i int, o *warren.Options)

// WithConfig applies edit to every node's config, the test profile.
func WithConfig(edit func(*config.Config)) Option {
	return func(_ int, o *warren.Options) { edit(&o.Config) }
}

// Pair returns two connected nodes.
func Pair(tb testing.TB, opts ...Option) (a, b *warren.Node) {
	tb.Helper()
	ns := Network(tb, 2, opts...)
	return ns[0], ns[1]
}

// Network returns n nodes on one mocknet, each connected to every other
// (so each has its peers' addresses, and the DHT of each knows them).
// tb.Cleanup closes them, then the mocknet; a failure to start or connect
// fails tb.
func Network(tb testing.TB, n int, opts ...Option) []*warren.Node {
	tb.Helper()
	nodes, err := start(n, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return nodes.track(tb)
}

type network struct {
	mn    mocknet.Mocknet
	nodes []*warren.Node
}

func (nw *network) track(tb testing.TB) []*warren.Node {
	tb.Cleanup(func() {
		if err := nw.close(); err != nil {
			tb.Error(err)
		}
	})
	return nw.nodes
}

func start(n int, opts []Option) (*network, error) {
	if n < 1 {
		return nil, fmt.Errorf("warrentest: %d nodes; expected at least 1", n)
	}
	nw := &network{mn: mocknet.New()}
	ctx, cancel := context.WithTimeout(context.Background(), ConnectTimeout)
	defer cancel()
	for i := range n {
		h, err := nw.mn.GenPeer()
		if err != nil {
			_ = nw.close()
			return nil, fmt.Errorf("warrentest: mocknet host %d: %w", i, err)
		}
		cfg, err := config.ForProfile(config.ProfileTest)
		if err != nil {
			_ = nw.close()
			return nil, err
		}
		o := warren.Options{Config: cfg}
		for _, opt := range opts {
			opt(i, &o)
		}
		o.Host = h
		nd, err := warren.New(ctx, o)
		if err != nil {
			_ = h.Close()
			_ = nw.close()
			return nil, fmt.Errorf("warrentest: node %d: %w", i, err)
		}
		nw.nodes = append(nw.nodes, nd)
	}
	if err := nw.mn.LinkAll(); err != nil {
		_ = nw.close()
		return nil, fmt.Errorf("warrentest: link the mocknet: %w", err)
	}
	for i, a := range nw.nodes {
		for _, b := range nw.nodes[i+1:] {
			if err := a.Connect(ctx, b.AddrInfo()); err != nil {
				_ = nw.close()
				return nil, fmt.Errorf("warrentest: connect %s to %s: %w", a.ID(), b.ID(), err)
			}
		}
	}
	return nw, nil
}

// close closes the nodes, last first, then the mocknet.
func (nw *network) close() error {
	var first error
	for i := len(nw.nodes) - 1; i >= 0; i-- {
		if err := nw.nodes[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	if err := nw.mn.Close(); err != nil && first == nil {
		first = fmt.Errorf("warrentest: close the mocknet: %w", err)
	}
	return first
}

// Eventually polls cond until it holds, failing tb if it does not within
// timeout; what names the condition in the failure. (Nodes learn of one
// another, and deliver, asynchronously: wait for the effect, not a time.)
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, timeout, what, cond)
}
