package tunnel

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Reasons a stream or client is refused, as the reason label of
// warren_tunnel_refused_total.
const (
	reasonAllow       = "allow"        // listen: peer not in the allow list
	reasonLimit       = "limit"        // the tunnel's MaxConns is reached
	reasonPeerLimit   = "peer_limit"   // listen: the peer's share of MaxConns is reached
	reasonService     = "service"      // listen: the resource manager refused the tunnel service
	reasonUDPSessions = "udp_sessions" // UDP forward: association cap reached
	reasonUDPSource   = "udp_source"   // UDP forward: the source IP's share of associations reached
)

// UDP forward bounds. A forward keeps at most min(MaxConns, udpMaxSessions)
// client associations, at most half of them (rounded up) from one source
// IP; each queues at most udpQueueLen datagrams and udpSessionQueueBytes
// bytes while its stream opens or is slow, and all of one forward's queues
// together at most udpForwardQueueBytes. Anything over is dropped and
// counted.
const (
	udpMaxSessions       = 256
	udpSessionQueueBytes = 256 << 10
	udpForwardQueueBytes = 8 << 20
)

// ServiceStreamsPerPeer is how many tunnel streams (each way) the resource
// manager should allow one peer in the tunnel service (ServiceName): every
// tunnelled connection is one stream, so this is generous. The root package
// wires it into the node's resource manager.
const ServiceStreamsPerPeer = 10000

// connLimiter counts a tunnel's concurrent connections, in total and per
// remote peer. The peer map holds only peers with a connection, so it is
// bounded by max.
type connLimiter struct {
	max, perPeer int // perPeer 0: no per-peer share

	mu    sync.Mutex
	n     int
	peers map[peer.ID]int
}

func newConnLimiter(max, perPeer int) *connLimiter {
	return &connLimiter{max: max, perPeer: perPeer, peers: make(map[peer.ID]int)}
}

// peerShare is the per-peer share of a listen tunnel's cap: half (rounded
// up), or all of it when only one peer is allowed anyway.
func peerShare(max, allowed int) int {
	if allowed == 1 {
		return max
	}
	return (max + 1) / 2
}

// acquire takes a slot for p and returns "" and the function releasing it
// (call exactly once), or the reason it was refused.
func (l *connLimiter) acquire(p peer.ID) (string, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.max {
		return reasonLimit, nil
	}
	if l.perPeer > 0 && l.peers[p] >= l.perPeer {
		return reasonPeerLimit, nil
	}
	l.n++
	if l.perPeer > 0 {
		l.peers[p]++
	}
	var once sync.Once
	return "", func() { once.Do(func() { l.release(p) }) }
}

func (l *connLimiter) release(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.perPeer > 0 {
		if l.peers[p]--; l.peers[p] <= 0 {
			delete(l.peers, p)
		}
	}
}
