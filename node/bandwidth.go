package node

// Bytes moved with each peer, for the status and /v1/peers.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// peerBytes counts bytes in and out per peer for libp2p's swarm. It is
// libp2p's metrics.Reporter without the rate meters of
// metrics.BandwidthCounter, whose process-wide sweeper goroutine never
// stops. Entries of peers no longer connected are dropped by trim, so the
// table holds the connected peers and those seen since the last trim.
type peerBytes struct {
	mu    sync.RWMutex
	peers map[peer.ID]*byteCount
	total byteCount
}

type byteCount struct {
	in, out atomic.Int64
	seen    atomic.Int64 // unix nanos of the last count
}

var _ metrics.Reporter = (*peerBytes)(nil)

func newPeerBytes() *peerBytes { return &peerBytes{peers: map[peer.ID]*byteCount{}} }

func (b *peerBytes) of(p peer.ID) *byteCount {
	b.mu.RLock()
	c := b.peers[p]
	b.mu.RUnlock()
	if c != nil {
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c = b.peers[p]; c == nil {
		c = &byteCount{}
		b.peers[p] = c
	}
	return c
}

func (b *peerBytes) LogSentMessage(n int64) { b.total.out.Add(n) }
func (b *peerBytes) LogRecvMessage(n int64) { b.total.in.Add(n) }
func (b *peerBytes) LogSentMessageStream(n int64, _ protocol.ID, p peer.ID) {
	c := b.of(p)
	c.out.Add(n)
	c.seen.Store(time.Now().UnixNano())
}
func (b *peerBytes) LogRecvMessageStream(n int64, _ protocol.ID, p peer.ID) {
	c := b.of(p)
	c.in.Add(n)
	c.seen.Store(time.Now().UnixNano())
}

func (b *peerBytes) GetBandwidthForPeer(p peer.ID) metrics.Stats {
	b.mu.RLock()
	c := b.peers[p]
	b.mu.RUnlock()
	if c == nil {
		return metrics.Stats{}
	}
	return metrics.Stats{TotalIn: c.in.Load(), TotalOut: c.out.Load()}
}

func (b *peerBytes) GetBandwidthForProtocol(protocol.ID) metrics.Stats { return metrics.Stats{} }
func (b *peerBytes) GetBandwidthTotals() metrics.Stats {
	return metrics.Stats{TotalIn: b.total.in.Load(), TotalOut: b.total.out.Load()}
}

func (b *peerBytes) GetBandwidthByPeer() map[peer.ID]metrics.Stats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make(map[peer.ID]metrics.Stats, len(b.peers))
	for p, c := range b.peers {
		out[p] = metrics.Stats{TotalIn: c.in.Load(), TotalOut: c.out.Load()}
	}
	return out
}

func (b *peerBytes) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats { return nil }

func (b *peerBytes) Reset() {
	b.mu.Lock()
	b.peers = map[peer.ID]*byteCount{}
	b.mu.Unlock()
}

// TrimIdle drops the peers not counted since the given time.
func (b *peerBytes) TrimIdle(since time.Time) {
	b.trim(since, func(peer.ID) bool { return false })
}

// trim drops the peers not counted since the given time, unless keep.
func (b *peerBytes) trim(since time.Time, keep func(peer.ID) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, c := range b.peers {
		if c.seen.Load() < since.UnixNano() && !keep(p) {
			delete(b.peers, p)
		}
	}
}
