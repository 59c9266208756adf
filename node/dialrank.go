package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// quicFallback is how long a TCP-first dial waits before also trying QUIC.
const quicFallback = 250 * time.Millisecond

// tcpFirstRanker keeps libp2p's default ranking within each transport, but
// dials a peer's TCP addresses first and its QUIC addresses only
// quicFallback after the last TCP attempt started. Tunnels move about twice
// the bytes per CPU second over TCP+yamux as over QUIC here
// (bench/tunnel/RESULTS.md), and QUIC caps a connection at 256 incoming
// streams, which a busy tunnel exceeds.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	var tcp, rest []network.AddrDelay
	for _, r := range ranked {
		if isTCP(r.Addr) {
			tcp = append(tcp, r)
		} else {
			rest = append(rest, r)
		}
	}
	if len(tcp) == 0 {
		return ranked
	}
	base, last := tcp[0].Delay, time.Duration(0)
	for _, r := range tcp {
		base = min(base, r.Delay)
	}
	out := make([]network.AddrDelay, 0, len(ranked))
	for _, r := range tcp {
		r.Delay -= base
		last = max(last, r.Delay)
		out = append(out, r)
	}
	for _, r := range rest {
		r.Delay += last + quicFallback
		out = append(out, r)
	}
	return out
}

func isTCP(a ma.Multiaddr) bool {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}
