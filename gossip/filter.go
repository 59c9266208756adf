package gossip

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/internal/ratelog"
)

// Why a peer's subscription was not tracked (the reason label of
// warren_gossip_subscriptions_refused_total).
const (
	// RefuseOtherNetwork: the topic is not "/warren/<this network>/topic/"
	// followed by a valid topic name.
	RefuseOtherNetwork = "other_network"
	// RefuseRPCLimit: the RPC carried more than MaxTopicsPerRPC
	// subscription changes; pubsub dropped the whole RPC. Each change in it
	// is counted.
	RefuseRPCLimit = "rpc_limit"
	// RefusePeerLimit: the peer was already subscribed to MaxTopicsPerPeer
	// topics.
	RefusePeerLimit = "peer_limit"
	// RefusePeerGone: the RPC was handled after its peer disconnected.
	RefusePeerGone = "peer_gone"
)

type refuseReason int

const (
	refuseOtherNetwork refuseReason = iota
	refuseRPCLimit
	refusePeerLimit
	refusePeerGone
	numRefuseReasons
)

func (r refuseReason) String() string {
	return [...]string{RefuseOtherNetwork, RefuseRPCLimit, RefusePeerLimit, RefusePeerGone}[r]
}

// subFilter is pubsub's SubscriptionFilter for one Service. It admits only
// this network's topics with valid names, at most perRPC subscription
// changes per RPC (pubsub drops a larger RPC whole, as its own
// WrapLimitSubscriptionFilter does), and at most perPeer current
// subscriptions per peer.
//
// To count a peer's subscriptions it mirrors what pubsub records: pubsub
// applies exactly the list this filter returns (subscribe adds the peer to
// the topic, unsubscribe removes it), so the mirror is pubsub's state for
// that peer. The mirror is dropped when the peer disconnects (pubsub drops
// its own state then too). pubsub also forgets a peer's topics when only
// its inbound stream closes; the mirror keeps them until the disconnect,
// which can only make it refuse that peer early, never admit more.
//
// pubsub calls the filter from its event loop; the notifiee calls forget
// from the swarm. mu guards peers.
type subFilter struct {
	prefix   string // "/warren/<network>/topic/"
	perRPC   int
	perPeer  int
	net      network.Network
	rlog     *ratelog.Logger
	refused  [numRefuseReasons]atomic.Uint64
	mRefused [numRefuseReasons]prometheus.Counter
	mu       sync.Mutex
	peers    map[peer.ID]map[string]struct{} // topics each connected peer is subscribed to
}

var _ pubsub.SubscriptionFilter = (*subFilter)(nil)

func newSubFilter(prefix string, perRPC, perPeer int, net network.Network, m *metrics, rlog *ratelog.Logger) *subFilter {
	f := &subFilter{
		prefix:  prefix,
		perRPC:  perRPC,
		perPeer: perPeer,
		net:     net,
		rlog:    rlog,
		peers:   make(map[peer.ID]map[string]struct{}),
	}
	for r := range numRefuseReasons {
		f.mRefused[r] = m.subsRefused.WithLabelValues(r.String())
	}
	return f
}

// CanSubscribe admits this network's topics with valid names. pubsub asks
// it for every topic a peer announces, and on Join.
func (f *subFilter) CanSubscribe(topic string) bool {
	name, ok := strings.CutPrefix(topic, f.prefix)
	return ok && validName(name, MaxTopicLen)
}

// FilterIncomingSubscriptions returns the subscription changes of one RPC
// from p that pubsub may apply. An error makes pubsub drop the whole RPC.
func (f *subFilter) FilterIncomingSubscriptions(p peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	if len(subs) > f.perRPC {
		f.refuse(refuseRPCLimit, len(subs))
		f.rlog.Warn("gossip: peer sent too many subscriptions in one RPC; RPC dropped",
			"peer", p, "subscriptions", len(subs), "limit", f.perRPC)
		return nil, pubsub.ErrTooManySubscriptions
	}
	// pubsub.FilterSubscriptions would do this in map order, so which
	// subscription a full peer is refused would be random: keep the RPC's
	// order. As there, one change per topic is kept, and a subscribe and an
	// unsubscribe of one topic in one RPC cancel out.
	foreign := 0
	kept := make([]*pb.RPC_SubOpts, 0, len(subs))
	at := make(map[string]int, len(subs))
	for _, sub := range subs {
		topic := sub.GetTopicid()
		if !f.CanSubscribe(topic) {
			foreign++
			continue
		}
		i, seen := at[topic]
		switch {
		case !seen:
			at[topic] = len(kept)
			kept = append(kept, sub)
		case kept[i] != nil && kept[i].GetSubscribe() != sub.GetSubscribe():
			kept[i] = nil
		}
	}
	subs = slices.DeleteFunc(kept, func(s *pb.RPC_SubOpts) bool { return s == nil })
	if foreign > 0 {
		f.refuse(refuseOtherNetwork, foreign)
		f.rlog.Warn("gossip: peer subscribed to topics outside this network; ignored",
			"peer", p, "topics", foreign, "network_prefix", f.prefix)
	}
	if len(subs) == 0 {
		return nil, nil
	}
	// FilterSubscriptions leaves one change per topic, in map order: count
	// the unsubscriptions first, so a peer that leaves one topic and joins
	// another in one RPC is within its limit whatever that order.
	slices.SortStableFunc(subs, func(a, b *pb.RPC_SubOpts) int {
		return cmp.Compare(b2i(a.GetSubscribe()), b2i(b.GetSubscribe()))
	})

	out := subs[:0]
	overLimit := 0
	f.mu.Lock()
	topics := f.peers[p]
	for _, sub := range subs {
		topic := sub.GetTopicid()
		if !sub.GetSubscribe() {
			delete(topics, topic) // no-op on a nil map
			out = append(out, sub)
			continue
		}
		if _, ok := topics[topic]; !ok {
			if len(topics) >= f.perPeer {
				overLimit++
				continue
			}
			if topics == nil {
				topics = make(map[string]struct{})
				f.peers[p] = topics
			}
			topics[topic] = struct{}{}
		}
		out = append(out, sub)
	}
	if topics != nil && len(topics) == 0 {
		delete(f.peers, p)
	}
	f.mu.Unlock()
	if overLimit > 0 {
		f.refuse(refusePeerLimit, overLimit)
		f.rlog.Warn("gossip: peer subscribed to too many topics; further subscriptions ignored",
			"peer", p, "ignored", overLimit, "limit", f.perPeer)
	}

	// The swarm marks a peer disconnected before it tells the notifiee, so
	// checking after recording means an RPC handled after the disconnect
	// leaves nothing behind, here or in pubsub.
	if !connected(f.net, p) {
		f.forget(p)
		f.refuse(refusePeerGone, len(out))
		return nil, nil
	}
	return out, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// forget drops what the filter holds about p.
func (f *subFilter) forget(p peer.ID) {
	f.mu.Lock()
	delete(f.peers, p)
	f.mu.Unlock()
}

// tracked reports how many peers and, of p, how many topics the filter
// tracks.
func (f *subFilter) tracked(p peer.ID) (peers, topics int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.peers), len(f.peers[p])
}

func (f *subFilter) refuse(r refuseReason, n int) {
	if n <= 0 {
		return
	}
	f.mRefused[r].Add(float64(n))
	f.refused[r].Add(uint64(n))
}

// connected reports whether p has a live connection (a relayed, limited
// one counts: the peer is still there).
func connected(n network.Network, p peer.ID) bool {
	switch n.Connectedness(p) {
	case network.Connected, network.Limited:
		return true
	}
	return false
}
