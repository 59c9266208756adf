package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/testutil"
)

// A line A—B—C: A publishes, B and C subscribe; C only hears through B.
func TestPublishSubscribeThreeHosts(t *testing.T) {
	mn, hs := newMocknet(t, 3)
	connect(t, mn, hs[0], hs[1])
	connect(t, mn, hs[1], hs[2])
	fast := Options{HeartbeatInterval: 100 * time.Millisecond} // quicker mesh grafting
	a, b, c := newService(t, hs[0], Options{}), newService(t, hs[1], fast), newService(t, hs[2], fast)

	subB, err := b.Subscribe("chat", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	subC, err := c.Subscribe("chat", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// GossipSub grafts meshes on its heartbeat; a relay forwards only to its
	// mesh, so wait until B and C have each other in theirs.
	testutil.Eventually(t, 5*time.Second, "the B—C mesh", func() bool {
		return topicInfo(t, b, "chat").Mesh > 0 && topicInfo(t, c, "chat").Mesh > 0
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "chat", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*Subscription{subB, subC} {
		m := next(t, sub, 5*time.Second)
		if string(m.Data) != "hello" || m.Topic != "chat" || m.From != hs[0].ID() {
			t.Fatalf("got %+v; expected %q on chat from %s", m, "hello", hs[0].ID())
		}
		if !strings.HasPrefix(m.ID, hs[0].ID().String()+"/") {
			t.Fatalf("message ID %q; expected <author>/<seqno>", m.ID)
		}
		if m.Time.IsZero() {
			t.Fatal("message time is zero")
		}
	}
	if got := topicInfo(t, a, "chat").Published; got != 1 {
		t.Fatalf("A published = %d; expected 1", got)
	}
	testutil.Eventually(t, 2*time.Second, "C's received count", func() bool { return topicInfo(t, c, "chat").Received == 1 })
	if info := topicInfo(t, c, "chat"); info.Subscriptions != 1 || info.Peers != 1 || info.Dropped != 0 {
		t.Fatalf("C topic info %+v; expected 1 subscription, 1 peer, 0 dropped", info)
	}
}

func TestJoinIsIdempotentAndValidatesNames(t *testing.T) {
	_, hs := newMocknet(t, 1)
	s := newService(t, hs[0], Options{})
	t1, err := s.Join("news")
	if err != nil {
		t.Fatal(err)
	}
	t2, err := s.Join("news")
	if err != nil || t1 != t2 {
		t.Fatalf("second Join = %p, %v; expected the same topic %p", t2, err, t1)
	}
	for _, bad := range []string{"", "a/b", "-x", strings.Repeat("x", 129), "sp ace"} {
		_, err := s.Join(bad)
		if err == nil || !strings.Contains(err.Error(), "expected 1-128 letters") {
			t.Errorf("Join(%q) = %v; expected an error naming the rule", bad, err)
		}
	}
	if _, err := s.Subscribe("a/b", SubscribeOptions{}); err == nil {
		t.Error("Subscribe to a bad name succeeded")
	}
	if _, err := s.Subscribe("news", SubscribeOptions{Buffer: -1}); err == nil || !strings.Contains(err.Error(), "Buffer is -1") {
		t.Errorf("Subscribe with Buffer -1 = %v; expected an error naming Buffer", err)
	}
	if got := len(s.Topics()); got != 1 {
		t.Fatalf("Topics() has %d entries; expected 1", got)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	_, hs := newMocknet(t, 1)
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Network: "a/b"}, "Options.Network"},
		{Options{Network: "-a"}, "Options.Network"},
		{Options{Network: "n", MaxMessageSize: -1}, "Options.MaxMessageSize is -1"},
		{Options{Network: "n", MaxMessageSize: 32 << 20}, "Options.MaxMessageSize is 33554432"},
		{Options{Network: "n", PublishTimeout: -time.Second}, "Options.PublishTimeout is -1s"},
		{Options{Network: "n", OutboundQueueSize: -5}, "Options.OutboundQueueSize is -5"},
		{Options{Network: "n", ValidateQueueSize: -5}, "Options.ValidateQueueSize is -5"},
		{Options{Network: "n", HeartbeatInterval: time.Millisecond}, "Options.HeartbeatInterval is 1ms"},
		{Options{Network: "n", MaxTopicsPerRPC: -1}, "Options.MaxTopicsPerRPC is -1; expected 1 to 10000"},
		{Options{Network: "n", MaxTopicsPerPeer: MaxMaxTopics + 1}, "Options.MaxTopicsPerPeer is 10001"},
	}
	for _, c := range cases {
		_, err := New(context.Background(), hs[0], c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v; expected an error containing %q", c.opts, err, c.want)
		}
	}
	if _, err := New(context.Background(), nil, Options{Network: "n"}); err == nil {
		t.Error("New with a nil host succeeded")
	}
}

func TestValidatorRejectStopsDelivery(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a, b := newService(t, hs[0], Options{}), newService(t, hs[1], Options{})

	var mu sync.Mutex
	var sawFrom peer.ID
	err := b.RegisterValidator("chat", func(_ context.Context, from peer.ID, m *Message) Result {
		mu.Lock()
		sawFrom = from
		mu.Unlock()
		if bytes.HasPrefix(m.Data, []byte("bad")) {
			return Reject
		}
		return Accept
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterValidator("chat", func(context.Context, peer.ID, *Message) Result { return Accept }); err == nil {
		t.Fatal("a second validator on one topic was accepted")
	}
	sub, err := b.Subscribe("chat", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "chat", []byte("bad one")); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "chat", []byte("good one")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub, 5*time.Second); string(m.Data) != "good one" {
		t.Fatalf("got %q; expected the rejected message to be skipped and %q delivered", m.Data, "good one")
	}
	mu.Lock()
	if sawFrom != hs[0].ID() {
		t.Fatalf("validator saw from=%s; expected %s", sawFrom, hs[0].ID())
	}
	mu.Unlock()
	// Validation runs concurrently: the reject may be counted just after
	// the good message is delivered.
	testutil.Eventually(t, 2*time.Second, "the reject to be counted", func() bool { return topicInfo(t, b, "chat").Rejected == 1 })
	info := topicInfo(t, b, "chat")
	if info.RejectedBy[RejectValidator] != 1 || info.Received != 1 {
		t.Fatalf("B topic info %+v; expected 1 rejected by the validator, 1 received", info)
	}
	expectNothing(t, sub, 200*time.Millisecond)

	// A validator on the publisher refuses its own message with an error.
	if err := a.RegisterValidator("chat", func(context.Context, peer.ID, *Message) Result { return Ignore }); err != nil {
		t.Fatal(err)
	}
	err = a.Publish(ctx, "chat", []byte("ignored"))
	if err == nil || !strings.Contains(err.Error(), "refused by validation") {
		t.Fatalf("publish through an ignoring validator = %v; expected a validation error", err)
	}
	expectNothing(t, sub, 300*time.Millisecond)

	// Unregistering restores delivery; a panicking validator rejects.
	if err := a.UnregisterValidator("chat"); err != nil {
		t.Fatal(err)
	}
	if err := a.RegisterValidator("chat", func(context.Context, peer.ID, *Message) Result { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "chat", []byte("x")); err == nil {
		t.Fatal("publish through a panicking validator succeeded")
	}
}

func TestPublishTooLarge(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	const limit = 4096
	a := newService(t, hs[0], Options{MaxMessageSize: limit})
	b := newService(t, hs[1], Options{MaxMessageSize: limit})
	sub, err := b.Subscribe("files", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	err = a.Publish(ctx, "files", make([]byte, limit+1))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "4097 bytes") || !strings.Contains(err.Error(), "limit of 4096 bytes") {
		t.Fatalf("oversize publish = %v; expected ErrTooLarge naming 4097 and 4096", err)
	}
	// Exactly the limit fits, envelope and all, and arrives.
	full := bytes.Repeat([]byte{7}, limit)
	if err := a.Publish(ctx, "files", full); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub, 5*time.Second); !bytes.Equal(m.Data, full) {
		t.Fatalf("got %d bytes; expected the %d-byte message", len(m.Data), limit)
	}
	tp, _ := a.Join("files")
	if err := tp.Publish(ctx, make([]byte, limit+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Topic.Publish oversize = %v; expected ErrTooLarge", err)
	}
}

func TestPublishWithoutPeersFailsClearly(t *testing.T) {
	_, hs := newMocknet(t, 1)
	s := newService(t, hs[0], Options{PublishTimeout: 200 * time.Millisecond})

	start := time.Now()
	err := s.Publish(context.Background(), "lonely", []byte("anyone?"))
	if !errors.Is(err, ErrNoPeers) || !strings.Contains(err.Error(), `no peers subscribed to topic "lonely" after`) {
		t.Fatalf("publish with no peers = %v; expected ErrNoPeers naming the topic", err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("publish gave up after %s; expected about the 200ms PublishTimeout", waited)
	}
	if got := topicInfo(t, s, "lonely").Published; got != 0 {
		t.Fatalf("published = %d after a failed publish; expected 0", got)
	}

	// The caller's deadline wins when it is shorter, and is named.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = s.Publish(ctx, "lonely", []byte("anyone?"))
	if !errors.Is(err, ErrNoPeers) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish with a short ctx = %v; expected ErrNoPeers and DeadlineExceeded", err)
	}
}

// A publisher that waits finds a subscriber that arrives during the wait.
func TestPublishWaitsForFirstPeer(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a, b := newService(t, hs[0], Options{}), newService(t, hs[1], Options{})
	subCh := make(chan *Subscription, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		sub, err := b.Subscribe("late", SubscribeOptions{})
		if err != nil {
			t.Error(err)
		}
		subCh <- sub
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "late", []byte("first")); err != nil {
		t.Fatal(err)
	}
	sub := <-subCh
	if sub == nil {
		t.FailNow()
	}
	if m := next(t, sub, 5*time.Second); string(m.Data) != "first" {
		t.Fatalf("got %q; expected the first message", m.Data)
	}
}

func TestNetworksDoNotMix(t *testing.T) {
	mn, hs := newMocknet(t, 3)
	connect(t, mn, hs[0], hs[1])
	connect(t, mn, hs[0], hs[2])
	connect(t, mn, hs[1], hs[2])
	a := newService(t, hs[0], Options{Network: "alpha", PublishTimeout: 300 * time.Millisecond})
	b := newService(t, hs[1], Options{Network: "beta"})
	c := newService(t, hs[2], Options{Network: "alpha"})

	subB, err := b.Subscribe("chat", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// With only the other network's subscriber, there is nobody to send to.
	if err := a.Publish(context.Background(), "chat", []byte("x")); !errors.Is(err, ErrNoPeers) {
		t.Fatalf("publish on alpha with only a beta subscriber = %v; expected ErrNoPeers", err)
	}
	subC, err := c.Subscribe("chat", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "chat", []byte("alpha only")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, subC, 5*time.Second); string(m.Data) != "alpha only" {
		t.Fatalf("C got %q", m.Data)
	}
	expectNothing(t, subB, 500*time.Millisecond)
	ta, _ := a.Join("chat")
	for _, p := range ta.Peers() {
		if p == hs[1].ID() {
			t.Fatal("beta's node is listed as a peer of alpha's topic")
		}
	}
}

// A reader that falls behind loses messages, and every loss is counted.
func TestSlowSubscriberDropsAreCounted(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a, b := newService(t, hs[0], Options{}), newService(t, hs[1], Options{})
	sub, err := b.Subscribe("firehose", SubscribeOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const n = 50
	for i := range n {
		if err := a.Publish(ctx, "firehose", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 5*time.Second, "all messages received", func() bool { return topicInfo(t, b, "firehose").Received == n })
	// Each message is buffered (1), dropped by our buffer, or dropped by
	// pubsub's channel before it: the three add up to n.
	testutil.Eventually(t, 5*time.Second, "drops to account for every message", func() bool {
		info := topicInfo(t, b, "firehose")
		return info.Dropped+1 == n
	})
	info := topicInfo(t, b, "firehose")
	if sub.Dropped() == 0 || sub.Dropped() != info.DroppedBy[DropSubscriptionFull] {
		t.Fatalf("sub.Dropped() = %d, topic %+v; expected the subscription's drops on both", sub.Dropped(), info)
	}
	if m := next(t, sub, time.Second); m == nil {
		t.Fatal("nil message")
	}
}

// Every message a slow reader does not get is in its Dropped: none is lost
// unseen in pubsub's channel ahead of the Subscription's buffer.
func TestSlowSubscriptionDroppedIsExact(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a, b := newService(t, hs[0], Options{}), newService(t, hs[1], Options{})
	sub, err := b.Subscribe("burst", SubscribeOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 500
	var received atomic.Uint64
	readerDone := make(chan struct{})
	go func() { // a reader slower than the publisher
		defer close(readerDone)
		for received.Load()+sub.Dropped() < n {
			if _, err := sub.Next(ctx); err != nil {
				return
			}
			received.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for i := range n {
		if err := a.Publish(ctx, "burst", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "all messages received", func() bool { return topicInfo(t, b, "burst").Received == n })
	select {
	case <-readerDone:
	case <-time.After(10 * time.Second):
	}
	info := topicInfo(t, b, "burst")
	if got := received.Load() + sub.Dropped(); got != n || info.DroppedBy[DropSubscriberSlow] != 0 {
		t.Fatalf("read %d + Dropped() %d = %d of %d published; topic %+v", received.Load(), sub.Dropped(), got, n, info)
	}
	if sub.Dropped() == 0 {
		t.Fatal("nothing dropped: the reader kept up, so this test shows nothing")
	}
	expectNothing(t, sub, 200*time.Millisecond)
}

func TestSubscriptionCloseAndServiceClose(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a := newService(t, hs[0], Options{})
	sub, err := a.Subscribe("t", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Leave("t"); err == nil {
		t.Fatal("Leave with an open subscription succeeded")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v; expected ErrClosed", err)
	}
	if got := topicInfo(t, a, "t").Subscriptions; got != 0 {
		t.Fatalf("subscriptions = %d after Close; expected 0", got)
	}
	if err := a.Leave("t"); err != nil {
		t.Fatal(err)
	}
	if len(a.Topics()) != 0 {
		t.Fatal("topic still listed after Leave")
	}

	sub2, err := a.Subscribe("u", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub2.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Service.Close = %v; expected ErrClosed", err)
	}
	if err := sub2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Join("v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close = %v; expected ErrClosed", err)
	}
	if err := a.Publish(context.Background(), "u", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v; expected ErrClosed", err)
	}
	// The protocol handlers are gone, so a new Service can take the host.
	b := newService(t, hs[0], Options{})
	if _, err := b.Join("u"); err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	reg := prometheus.NewRegistry()
	a := newService(t, hs[0], Options{Registerer: reg})
	b := newService(t, hs[1], Options{})
	sub, err := b.Subscribe("m", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "m", []byte("x")); err != nil {
		t.Fatal(err)
	}
	next(t, sub, 5*time.Second)
	if got := gatherCounter(t, reg, "warren_gossip_published_total", "m"); got != 1 {
		t.Fatalf("warren_gossip_published_total{topic=m} = %v; expected 1", got)
	}
	if _, err := New(context.Background(), hs[1], Options{Network: "test", Registerer: reg}); err == nil ||
		!strings.Contains(err.Error(), "WrapRegistererWith") {
		t.Fatalf("second Service on one registry = %v; expected a clear registration error", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Close unregistered the collectors.
	c := newService(t, hs[0], Options{Registerer: reg})
	_ = c
}

// gatherCounter reads a counter with label topic=topic from reg.
func gatherCounter(t *testing.T, reg *prometheus.Registry, name, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{topic=%q} not gathered", name, topic)
	return 0
}

func TestGossipParamsKeepWindowsInTime(t *testing.T) {
	def := gossipParams(time.Second)
	p := gossipParams(250 * time.Millisecond)
	if p.HeartbeatInterval != 250*time.Millisecond {
		t.Fatalf("heartbeat %s; expected 250ms", p.HeartbeatInterval)
	}
	if p.HistoryGossip != 4*def.HistoryGossip || p.HistoryLength != 4*def.HistoryLength {
		t.Fatalf("history gossip/length %d/%d; expected 4x the defaults %d/%d",
			p.HistoryGossip, p.HistoryLength, def.HistoryGossip, def.HistoryLength)
	}
	if slow := gossipParams(time.Minute); slow.HistoryGossip < 1 || slow.HistoryLength < slow.HistoryGossip {
		t.Fatalf("slow heartbeat gave history gossip/length %d/%d; expected ≥1 and length ≥ gossip",
			slow.HistoryGossip, slow.HistoryLength)
	}
}

// pubsub keeps the published slice (for gossip retransmission); the caller
// must be free to reuse its buffer as soon as Publish returns.
func TestPublishCopiesData(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	a, b := newService(t, hs[0], Options{}), newService(t, hs[1], Options{})
	sub, err := b.Subscribe("buf", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	buf := []byte("original")
	for range 20 {
		copy(buf, "original")
		if err := a.Publish(ctx, "buf", buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, "mutated!")
	}
	for range 20 {
		if m := next(t, sub, 5*time.Second); string(m.Data) != "original" {
			t.Fatalf("got %q; expected the data as it was when published", m.Data)
		}
	}
}
