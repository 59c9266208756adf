package gossip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/warren-p2p/warren/internal/ratelog"

	"github.com/warren-p2p/warren/internal/testutil"
)

// rawPeer is a libp2p host that speaks warren's GossipSub protocol by hand:
// it writes whatever RPCs the test builds, with none of pubsub's manners.
type rawPeer struct {
	tb testing.TB
	h  host.Host
	s  network.Stream
}

// dialRaw connects raw to s's host and opens a GossipSub stream to it. With
// accept, raw also takes (and discards) s's stream to it, as a real peer
// does, so pubsub counts raw among its peers.
func dialRaw(tb testing.TB, raw host.Host, s *Service, accept bool) *rawPeer {
	tb.Helper()
	if accept {
		for _, p := range s.protos {
			raw.SetStreamHandler(p, func(st network.Stream) {
				_, _ = io.Copy(io.Discard, st)
				_ = st.Reset()
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := raw.Connect(ctx, peer.AddrInfo{ID: s.host.ID(), Addrs: s.host.Addrs()}); err != nil {
		tb.Fatal(err)
	}
	st, err := raw.NewStream(ctx, s.host.ID(), s.protos[0])
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Reset() })
	return &rawPeer{tb: tb, h: raw, s: st}
}

// send writes one RPC, varint length-prefixed as pubsub frames them.
func (r *rawPeer) send(rpc *pb.RPC) {
	r.tb.Helper()
	b, err := proto.Marshal(rpc)
	if err != nil {
		r.tb.Fatal(err)
	}
	frame := binary.AppendUvarint(nil, uint64(len(b)))
	if _, err := r.s.Write(append(frame, b...)); err != nil {
		r.tb.Fatalf("raw peer: write RPC: %v", err)
	}
}

// subscribe sends one RPC announcing topics.
func (r *rawPeer) subscribe(topics ...string) {
	r.tb.Helper()
	rpc := &pb.RPC{}
	for _, t := range topics {
		rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Topicid: proto.String(t), Subscribe: proto.Bool(true)})
	}
	r.send(rpc)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// listPeers asks pubsub itself who is subscribed to a full topic string.
func listPeers(s *Service, full string) []peer.ID { return s.ps.ListPeers(full) }

// One peer announcing 300,000 topics, in RPCs of 100 (the per-RPC limit),
// costs the node no more than MaxTopicsPerPeer of them: pubsub's own topic
// map stays bounded, the heap barely moves, and every refusal is counted.
// Topics of other networks, invalid names and oversized RPCs are refused
// too; this network's topics are tracked as before. (Without the filter
// the heap grows by ~130 MB and pubsub lists the peer in every topic.)
func TestSubscriptionFloodIsBounded(t *testing.T) {
	const attackTopics = 300_000
	mn, hs := newMocknet(t, 2)
	_ = mn
	reg := prometheus.NewRegistry()
	log, rec := newLogRecorder(slog.LevelInfo) // debug lines would fill the heap
	s := newService(t, hs[0], Options{Registerer: reg, Logger: log})
	chat, err := s.Join("chat")
	if err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, hs[1], s, true)
	rawID := hs[1].ID()

	// This network's topic is accepted.
	raw.subscribe(s.fullName("chat"))
	testutil.Eventually(t, 5*time.Second, "the raw peer in chat", func() bool { return slices.Contains(chat.Peers(), rawID) })

	// Other networks' topics and malformed names are ignored.
	bad := []string{"/warren/other/topic/chat", "/ipfs/x", s.prefix, s.prefix + "a/b",
		s.prefix + strings.Repeat("x", MaxTopicLen+1), s.prefix + "-x", "chat"}
	raw.subscribe(bad...)
	// An RPC over the limit is dropped whole, even its valid topics.
	big := make([]string, DefaultMaxTopicsPerRPC+1)
	for i := range big {
		big[i] = s.fullName(fmt.Sprintf("big%d", i))
	}
	raw.subscribe(big...)
	testutil.Eventually(t, 5*time.Second, "the refusals", func() bool {
		r := s.SubscriptionsRefused()
		return r[RefuseOtherNetwork] == uint64(len(bad)) && r[RefuseRPCLimit] == uint64(len(big))
	})
	for _, full := range append(bad, big[0], big[len(big)-1]) {
		if ps := listPeers(s, full); len(ps) != 0 {
			t.Fatalf("pubsub lists %v in refused topic %q", ps, full)
		}
	}

	// The flood, in batches of the per-RPC limit.
	before := heapInUse()
	start := time.Now()
	batch := make([]string, 0, DefaultMaxTopicsPerRPC)
	for i := range attackTopics {
		batch = append(batch, s.fullName(fmt.Sprintf("t%d", i)))
		if len(batch) == cap(batch) {
			raw.subscribe(batch...)
			batch = batch[:0]
		}
	}
	wantRefused := uint64(attackTopics - (DefaultMaxTopicsPerPeer - 1)) // chat holds one slot
	testutil.Eventually(t, 60*time.Second, "the flood to be handled", func() bool {
		return s.SubscriptionsRefused()[RefusePeerLimit] >= wantRefused
	})
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d topics announced in %s; heap grew by %.1f MiB", attackTopics, time.Since(start).Round(time.Millisecond), float64(grown)/(1<<20))
	if grown > 16<<20 {
		t.Fatalf("heap grew by %d bytes after a 300,000-topic flood; expected < 16 MiB", grown)
	}
	if got := s.SubscriptionsRefused()[RefusePeerLimit]; got != wantRefused {
		t.Fatalf("peer_limit refusals = %d; expected %d", got, wantRefused)
	}
	if _, n := s.filter.tracked(rawID); n != DefaultMaxTopicsPerPeer {
		t.Fatalf("filter tracks %d topics of the peer; expected MaxTopicsPerPeer = %d", n, DefaultMaxTopicsPerPeer)
	}
	// pubsub itself: the first batches are there (the third only in part:
	// within an RPC pubsub's dedup shuffles the order), the rest are not.
	if ps := listPeers(s, s.fullName("t0")); !slices.Contains(ps, rawID) {
		t.Fatalf("pubsub lists %v in t0; expected the raw peer (within its limit)", ps)
	}
	listed := 0
	for i := range 3 * DefaultMaxTopicsPerRPC {
		if slices.Contains(listPeers(s, s.fullName(fmt.Sprintf("t%d", i))), rawID) {
			listed++
		}
	}
	if listed != DefaultMaxTopicsPerPeer-1 {
		t.Fatalf("pubsub lists the peer in %d of the first 300 topics; expected %d", listed, DefaultMaxTopicsPerPeer-1)
	}
	for _, i := range []int{3 * DefaultMaxTopicsPerRPC, attackTopics / 2, attackTopics - 1} {
		if ps := listPeers(s, s.fullName(fmt.Sprintf("t%d", i))); len(ps) != 0 {
			t.Fatalf("pubsub lists %v in t%d; expected nobody (over the peer's limit)", ps, i)
		}
	}
	// Still a member where it was; the metric agrees with the counter.
	if !slices.Contains(chat.Peers(), rawID) {
		t.Fatal("the raw peer left chat")
	}
	if got := gatherLabel(t, reg, "warren_gossip_subscriptions_refused_total", "reason", RefusePeerLimit); got != float64(wantRefused) {
		t.Fatalf("warren_gossip_subscriptions_refused_total{reason=peer_limit} = %v; expected %d", got, wantRefused)
	}

	// 3,000 RPCs over the limit, one rate-limited warning.
	if n := rec.count(slog.LevelWarn, "too many topics"); n != 1 {
		t.Fatalf("%d warnings for the flood; expected 1 (rate-limited)", n)
	}

	// Unsubscribing frees slots: the peer may then take a new topic.
	raw.send(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Topicid: proto.String(s.fullName("t0")), Subscribe: proto.Bool(false)}}})
	raw.subscribe(s.fullName("fresh"))
	testutil.Eventually(t, 5*time.Second, "the fresh subscription", func() bool {
		return slices.Contains(listPeers(s, s.fullName("fresh")), rawID)
	})
	if ps := listPeers(s, s.fullName("t0")); len(ps) != 0 {
		t.Fatalf("pubsub lists %v in t0 after the unsubscribe", ps)
	}
}

// A peer that leaves takes its state with it: the filter forgets its
// topics, and a mesh entry pubsub never prunes (a GRAFT from a peer that
// refused pubsub's own stream, so pubsub never reports it gone) is removed
// from the topic's mesh count on disconnect.
func TestDepartedPeerStateIsRemoved(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	s := newService(t, hs[0], Options{})
	chat, err := s.Join("chat")
	if err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, hs[1], s, false) // no handler: pubsub's stream to it fails
	rawID := hs[1].ID()
	raw.subscribe(s.fullName("chat"), s.fullName("other"))
	topic := s.fullName("chat")
	raw.send(&pb.RPC{Control: &pb.ControlMessage{Graft: []*pb.ControlGraft{{TopicID: &topic}}}})
	testutil.Eventually(t, 5*time.Second, "the raw peer in chat's mesh", func() bool { return chat.Info().Mesh == 1 })
	if peers, n := s.filter.tracked(rawID); peers != 1 || n != 2 {
		t.Fatalf("filter tracks %d peers, %d topics of the raw peer; expected 1 and 2", peers, n)
	}

	if err := mn.DisconnectPeers(hs[0].ID(), hs[1].ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the departed peer's mesh entry to go", func() bool { return chat.Info().Mesh == 0 })
	testutil.Eventually(t, 5*time.Second, "the departed peer's subscriptions to go", func() bool {
		peers, _ := s.filter.tracked(rawID)
		return peers == 0
	})
	if ps := listPeers(s, topic); len(ps) != 0 {
		t.Fatalf("pubsub lists %v in chat after the peer left", ps)
	}
}

// A filter fed directly: the per-peer limit counts distinct current
// topics, duplicates and unsubscriptions included, and a peer that is not
// connected leaves nothing behind.
func TestSubFilterAccounting(t *testing.T) {
	mn, hs := newMocknet(t, 2)
	connect(t, mn, hs[0], hs[1])
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	rlog := ratelog.New(nil, 0)
	defer rlog.Close()
	f := newSubFilter("/warren/test/topic/", 10, 3, hs[0].Network(), m, rlog)
	sub := func(topic string, on bool) *pb.RPC_SubOpts {
		return &pb.RPC_SubOpts{Topicid: proto.String("/warren/test/topic/" + topic), Subscribe: proto.Bool(on)}
	}
	p := hs[1].ID()
	out, err := f.FilterIncomingSubscriptions(p, []*pb.RPC_SubOpts{sub("a", true), sub("b", true), sub("a", true)})
	if err != nil || len(out) != 2 {
		t.Fatalf("first RPC: %d accepted, %v; expected a and b", len(out), err)
	}
	out, _ = f.FilterIncomingSubscriptions(p, []*pb.RPC_SubOpts{sub("c", true), sub("d", true), sub("a", true)})
	if len(out) != 2 || f.refused[refusePeerLimit].Load() != 1 {
		t.Fatalf("second RPC: %d accepted, %d refused; expected c and a (already held) accepted, d refused",
			len(out), f.refused[refusePeerLimit].Load())
	}
	out, _ = f.FilterIncomingSubscriptions(p, []*pb.RPC_SubOpts{sub("b", false), sub("d", true)})
	if len(out) != 2 {
		t.Fatalf("after unsubscribing b, d: %d accepted; expected both", len(out))
	}
	if _, n := f.tracked(p); n != 3 {
		t.Fatalf("tracking %d topics; expected 3", n)
	}
	// At its limit, a peer that joins e and leaves a in one RPC, in that
	// order, is within it: leaving counts first.
	for range 20 {
		out, _ = f.FilterIncomingSubscriptions(p, []*pb.RPC_SubOpts{sub("e", true), sub("a", false)})
		if _, n := f.tracked(p); len(out) != 2 || n != 3 {
			t.Fatalf("join e, leave a at the limit: %d accepted, %d tracked; expected 2 and 3", len(out), n)
		}
		out, _ = f.FilterIncomingSubscriptions(p, []*pb.RPC_SubOpts{sub("a", true), sub("e", false)})
		if len(out) != 2 {
			t.Fatalf("join a, leave e at the limit: %d accepted; expected 2", len(out))
		}
	}
	many := make([]*pb.RPC_SubOpts, 11)
	for i := range many {
		many[i] = sub(fmt.Sprint(i), true)
	}
	if _, err := f.FilterIncomingSubscriptions(p, many); err != pubsub.ErrTooManySubscriptions {
		t.Fatalf("11 subscriptions in one RPC: %v; expected ErrTooManySubscriptions", err)
	}
	if !f.CanSubscribe("/warren/test/topic/ok") || f.CanSubscribe("/warren/test2/topic/ok") {
		t.Fatal("CanSubscribe does not follow the network prefix")
	}

	// A stranger (never connected): nothing is recorded for it.
	stranger := hs[0].ID() // not connected to itself
	out, _ = f.FilterIncomingSubscriptions(stranger, []*pb.RPC_SubOpts{sub("x", true)})
	if peers, _ := f.tracked(p); len(out) != 0 || peers != 1 || f.refused[refusePeerGone].Load() != 1 {
		t.Fatalf("unconnected peer: %d accepted, %d peers tracked; expected 0 and 1", len(out), peers)
	}
}

// gatherLabel reads a counter with one label from reg.
func gatherLabel(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
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
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not gathered", name, label, value)
	return 0
}

// A node may join at most MaxTopicsPerRPC topics: its hello lists them all
// in one RPC, which peers would drop whole if it were larger. Leaving one
// makes room again.
func TestJoinIsBoundedByTheRPCLimit(t *testing.T) {
	_, hs := newMocknet(t, 1)
	s := newService(t, hs[0], Options{MaxTopicsPerRPC: 3})
	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.Join(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Join("a"); err != nil {
		t.Fatalf("re-joining a joined topic at the limit: %v", err)
	}
	_, err := s.Join("d")
	if !errors.Is(err, ErrTooManyTopics) || !strings.Contains(err.Error(), "MaxTopicsPerRPC") {
		t.Fatalf("fourth Join = %v; expected ErrTooManyTopics naming MaxTopicsPerRPC", err)
	}
	if err := s.Leave("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join("d"); err != nil {
		t.Fatalf("Join after Leave: %v", err)
	}
}
