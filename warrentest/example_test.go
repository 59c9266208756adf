package warrentest_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren"
	"github.com/warren-p2p/warren/msg"
	"github.com/warren-p2p/warren/warrentest"

	"github.com/warren-p2p/warren/gossip"
)

// mocknet's NewStream does not check that its connection is closed: a
// stream one node's DHT opens while the other node is closing that
// connection is added after the connection reset its streams, so it is
// never reset, and its pipe goroutines and the handler reading it (the
// closed node's DHT, in libp2p's code) wait forever. About 1 run in 30
// left such a stream. Those goroutines belong to mocknet, not to warren,
// and are ignored by name; every other goroutine still fails the run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/net/mock.(*stream).transport"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/net/mock.(*stream).Read"))
}

// An application's test: two nodes exchange a direct message and a
// request, on mocknet, with no sockets.
func TestPairExchangesMessages(t *testing.T) {
	a, b := warrentest.Pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sub, err := b.Msg().Subscribe("chat", msg.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := a.Msg().Send(ctx, b.ID(), "chat", []byte("hi"), msg.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil || string(m.Payload) != "hi" || m.From != a.ID() {
		t.Fatalf("got %v, %v", m, err)
	}

	reg, err := b.Msg().Handle("upper", func(_ context.Context, m *msg.Message) ([]byte, error) {
		return []byte(strings.ToUpper(string(m.Payload))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	r, err := a.Msg().Request(ctx, b.ID(), "upper", []byte("shout"))
	if err != nil || string(r.Payload) != "SHOUT" {
		t.Fatalf("request: %v, %v", r, err)
	}
}

// Every node of a Network is connected to every other, and an
// application's own protocol (Options.Protocols) is served, then closed
// when the node closes.
func TestNetworkWithAProtocol(t *testing.T) {
	const proto = "/myapp/echo/1.0.0"
	closed := make(chan int, 3)
	nodes := warrentest.Network(t, 3, func(i int, o *warren.Options) {
		o.Protocols = []warren.Protocol{{
			ID: proto,
			Handler: func(s network.Stream) {
				defer s.Close()
				line, _ := bufio.NewReader(io.LimitReader(s, 1024)).ReadString('\n')
				_, _ = s.Write([]byte(line))
			},
			Close: func() error { closed <- i; return nil },
		}}
	})
	for _, n := range nodes {
		if got := len(n.Peers()); got != 2 {
			t.Fatalf("%s has %d peers; expected 2", n.ID(), got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := nodes[0].Host().NewStream(ctx, nodes[2].ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(s).ReadString('\n')
	if err != nil || got != "ping\n" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	_ = s.Close()
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	if i := <-closed; i != 2 {
		t.Fatalf("protocol of node %d closed; expected node 2's", i)
	}
	if _, err := nodes[0].Host().NewStream(ctx, nodes[2].ID(), proto); err == nil {
		t.Fatal("a closed node still serves its protocol")
	}
}

// Gossip between nodes of a Network: subscriptions propagate
// asynchronously, so wait for the mesh before publishing.
func TestNetworkGossip(t *testing.T) {
	nodes := warrentest.Network(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var subs []*gossip.Subscription
	for _, n := range nodes[1:] {
		s, err := n.Gossip().Subscribe("news", gossip.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs = append(subs, s)
	}
	topic, err := nodes[0].Gossip().Join("news")
	if err != nil {
		t.Fatal(err)
	}
	warrentest.Eventually(t, 10*time.Second, "both subscribers in the topic", func() bool { return len(topic.Peers()) == 2 })
	if err := topic.Publish(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		m, err := s.Next(ctx)
		if err != nil || string(m.Data) != "hello" {
			t.Fatalf("got %v, %v", m, err)
		}
	}
}
