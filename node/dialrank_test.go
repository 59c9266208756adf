package node

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirstRanker(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/1.2.3.4/udp/4101/quic-v1"),
		ma.StringCast("/ip4/1.2.3.4/tcp/4101"),
		ma.StringCast("/ip6/2001:db8::1/tcp/4101"),
		ma.StringCast("/ip4/5.6.7.8/tcp/4101/p2p/12D3KooWGRUVh7jHdxHPDHNZzuBFxLZ3Pf4pVjsB9RwQKNCjTuuZ/p2p-circuit"),
	}
	ranked := tcpFirstRanker(addrs)
	if len(ranked) != len(addrs) {
		t.Fatalf("ranked %d of %d addresses", len(ranked), len(addrs))
	}
	var firstTCP, lastTCP, firstOther time.Duration = -1, 0, -1
	for _, r := range ranked {
		if isTCP(r.Addr) {
			if firstTCP < 0 || r.Delay < firstTCP {
				firstTCP = r.Delay
			}
			lastTCP = max(lastTCP, r.Delay)
		} else if firstOther < 0 || r.Delay < firstOther {
			firstOther = r.Delay
		}
	}
	if firstTCP != 0 {
		t.Errorf("first TCP dial delayed %v", firstTCP)
	}
	if firstOther < lastTCP+quicFallback {
		t.Errorf("QUIC/relay dialled at %v, before the TCP fallback window (%v)", firstOther, lastTCP+quicFallback)
	}
	// Only QUIC: nothing changes.
	only := tcpFirstRanker(addrs[:1])
	if len(only) != 1 || only[0].Delay != 0 {
		t.Errorf("QUIC-only ranking: %v", only)
	}
}
