package warren_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/msg"
)

func newNode(t *testing.T, repoDir string) *warren.Node {
	t.Helper()
	cfg, _ := config.ForProfile(config.ProfileTest)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key, RepoDir: repoDir})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLibraryNodeEndToEnd is what an application does in-process: two nodes,
// connect, exchange a message, close, and nothing is left running.
func TestLibraryNodeEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newNode(t, ""), newNode(t, t.TempDir())

	sub, err := a.Msg().Subscribe("greeting", msg.SubscribeOptions{Buffer: 8, Policy: msg.Block})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := b.Msg().Send(ctx, a.ID(), "greeting", []byte("hello"), msg.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != "hello" || m.From != b.ID() {
		t.Fatalf("got %q from %s", m.Payload, m.From)
	}
	if rtts, err := b.Ping(ctx, a.ID(), 1); err != nil || len(rtts) != 1 {
		t.Fatalf("ping: %v %v", rtts, err)
	}
	sub.Close()
	for _, n := range []*warren.Node{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil { // idempotent
			t.Fatal(err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cfg := config.Default()
	cfg.Network = ""
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	if _, err := warren.New(context.Background(), warren.Options{Config: cfg, Key: key}); err == nil {
		t.Fatal("empty network accepted")
	}
}

// The message service's resource-manager limits (memory per peer and per
// stream raised for it) let a message of messages.max_message_size through,
// well over libp2p's default 16 MiB per stream.
func TestMaxSizeMessageWithinServiceLimits(t *testing.T) {
	const size = 32 << 20
	mk := func() *warren.Node {
		return newNodeWith(t, func(cfg *config.Config) {
			cfg.Messages.MaxMessageSize = size
			if !cfg.Swarm.ResourceManager.Enabled {
				t.Fatal("test profile runs without the resource manager")
			}
		})
	}
	a, b := mk(), mk()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := a.Msg().Subscribe("big", msg.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size)
	payload[size-1] = 7
	if err := b.Msg().Send(ctx, a.ID(), "big", payload, msg.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payload) != size || m.Payload[size-1] != 7 {
		t.Fatalf("got %d bytes", len(m.Payload))
	}
	if st := a.Msg().Stats(); st.RefusedMemory != 0 || st.RefusedStreams != 0 {
		t.Fatalf("refused: %+v", st)
	}
	// The reader releases the frame's reservation once dispatch returns,
	// which may be just after the subscriber has the message.
	for deadline := time.Now().Add(5 * time.Second); a.Msg().Stats().InboundFrameBytes != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("frame memory still reserved 5 s after delivery: %+v", a.Msg().Stats())
		}
	}
}

// Options{} starts a loopback-only test node with a fresh key; two such
// nodes have different identities.
func TestZeroOptions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	a, err := warren.New(ctx, warren.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := warren.New(ctx, warren.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := config.ForProfile(config.ProfileTest)
	cfg := a.Config()
	if cfg.Discovery.MDNS || cfg.Swarm.NATPortMap || cfg.Swarm.RelayClient || len(cfg.Discovery.Bootstrap) != 0 || cfg.Network != want.Network {
		t.Errorf("zero Options config: %+v", cfg)
	}
	if a.ID() == b.ID() {
		t.Error("two zero-Options nodes share a key")
	}
	for _, addr := range a.Addrs() {
		if ip, err := addr.ValueForProtocol(multiaddr.P_IP4); err != nil || ip != "127.0.0.1" {
			t.Errorf("address %s is not loopback", addr)
		}
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*warren.Node{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Application protocols are served, and closed in the order given, while
// the services still run, before the node's host; a Close error is
// returned by the node's Close.
func TestProtocolsClosedInOrderBeforeServices(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var order []string
	var n *warren.Node
	proto := func(name string, err error) warren.Protocol {
		return warren.Protocol{ID: protocol.ID("/test/" + name), Handler: func(s network.Stream) { _ = s.Reset() },
			Close: func() error {
				if _, serr := n.Msg().Subscribe("still-up", msg.SubscribeOptions{}); serr != nil {
					order = append(order, name+": msg already closed")
				}
				if len(n.Host().Mux().Protocols()) > 0 && slices.Contains(n.Host().Mux().Protocols(), protocol.ID("/test/"+name)) {
					order = append(order, name+": still served")
				}
				order = append(order, name)
				return err
			}}
	}
	var err error
	n, err = warren.New(context.Background(), warren.Options{Protocols: []warren.Protocol{
		proto("one", nil), proto("two", errors.New("boom")), {ID: "/test/three", Handler: func(s network.Stream) { _ = s.Reset() }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	served := n.Host().Mux().Protocols()
	for _, p := range []protocol.ID{"/test/one", "/test/two", "/test/three"} {
		if !slices.Contains(served, p) {
			t.Fatalf("%s not served: %v", p, served)
		}
	}
	err = n.Close()
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "/test/two") {
		t.Fatalf("Close = %v; expected protocol two's error", err)
	}
	if got := strings.Join(order, ","); got != "one,two" {
		t.Fatalf("close order %q; expected one,two with services still running", got)
	}
	if _, err := warren.New(context.Background(), warren.Options{Protocols: []warren.Protocol{{ID: "/test/x"}}}); err == nil {
		t.Fatal("a protocol without a handler was accepted")
	}
}

// denyDials is a connection gater that refuses every outbound dial.
type denyDials struct{}

func (denyDials) InterceptPeerDial(peer.ID) bool                      { return false }
func (denyDials) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool { return false }
func (denyDials) InterceptAccept(network.ConnMultiaddrs) bool         { return true }
func (denyDials) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (denyDials) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// Options.Libp2pOptions reach the host: a gater refusing dials stops Connect.
func TestLibp2pOptionsApply(t *testing.T) {
	ctx := context.Background()
	a, err := warren.New(ctx, warren.Options{Libp2pOptions: []libp2p.Option{libp2p.ConnectionGater(denyDials{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := warren.New(ctx, warren.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Connect(cctx, b.AddrInfo()); err == nil {
		t.Fatal("the gater's refusal did not apply")
	}
	if err := b.Connect(cctx, a.AddrInfo()); err != nil {
		t.Fatalf("inbound is allowed: %v", err)
	}
}
