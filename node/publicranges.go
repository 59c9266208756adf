package node

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/warren-p2p/warren/config"
)

// publicRanges is the process-wide state behind swarm.public_ranges.
//
// go-libp2p decides whether an address is public with go-multiaddr's
// manet.IsPublicAddr (and IsPrivateAddr), which read the package variables
// manet.Private4/6 and manet.Unroutable4/6. In go-libp2p v0.51.0 that
// decision gates: the address manager's HolePunchAddrs and its public-address
// filtering, identify's choice of which of our addresses to send to a peer
// at a public address, AutoNAT v1's probe addresses and AutoNAT v2's server
// (which refuses to dial back private addresses), the relay service's
// reservation addresses, AutoRelay's address cleanup, hole punching's
// direct-dial short cut, and the swarm's dial ranking and black-hole
// detector. holepunch.WithAddrFilter cannot help: it only narrows lists that
// IsPublicAddr has already filtered. So the one place to say "these ranges
// are public" is those variables, which are global to the process.
//
// They are changed at most once per process, before the first host that
// names ranges starts, and only by removing the configured ranges from the
// private and unroutable lists (a list entry that contains a configured
// range is split around it). Loopback can never be removed (config
// validation refuses ranges that overlap it). A later node naming the same
// ranges is fine; one naming different ranges is refused, since the change
// cannot be undone while hosts that rely on it run. A node with no ranges
// leaves the lists as they are.
var publicRanges struct {
	mu      sync.Mutex
	applied []netip.Prefix // sorted; nil until ranges have been applied
}

// usePublicRanges makes libp2p treat addresses in ranges as public, for the
// whole process (see publicRanges). It is idempotent.
func usePublicRanges(ranges []string) error {
	if len(ranges) == 0 {
		return nil
	}
	want := make([]netip.Prefix, 0, len(ranges))
	for _, s := range ranges {
		p, err := config.ParsePublicRange(s)
		if err != nil {
			return fmt.Errorf("swarm.public_ranges %q: %w", s, err)
		}
		want = append(want, p)
	}
	slices.SortFunc(want, comparePrefix)
	want = slices.Compact(want)

	publicRanges.mu.Lock()
	defer publicRanges.mu.Unlock()
	if publicRanges.applied != nil {
		if slices.Equal(publicRanges.applied, want) {
			return nil
		}
		return fmt.Errorf("swarm.public_ranges %s: this process already treats %s as public, and the setting is process-wide: run nodes with other ranges in other processes",
			fmtPrefixes(want), fmtPrefixes(publicRanges.applied))
	}
	manet.Private4 = withoutRanges(manet.Private4, want)
	manet.Unroutable4 = withoutRanges(manet.Unroutable4, want)
	manet.Private6 = withoutRanges(manet.Private6, want)
	manet.Unroutable6 = withoutRanges(manet.Unroutable6, want)
	publicRanges.applied = want
	return nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func fmtPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// withoutRanges returns a new list covering the addresses of list minus
// those of remove. list is not modified.
func withoutRanges(list []*net.IPNet, remove []netip.Prefix) []*net.IPNet {
	out := make([]*net.IPNet, 0, len(list))
	for _, n := range list {
		p, ok := ipNetPrefix(n)
		if !ok {
			out = append(out, n) // not expressible as a prefix: keep as is
			continue
		}
		parts := []netip.Prefix{p}
		for _, r := range remove {
			var next []netip.Prefix
			for _, q := range parts {
				next = append(next, subtractPrefix(q, r)...)
			}
			parts = next
		}
		for _, q := range parts {
			out = append(out, &net.IPNet{IP: net.IP(q.Addr().AsSlice()), Mask: net.CIDRMask(q.Bits(), q.Addr().BitLen())})
		}
	}
	return out
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	if a.BitLen() != bits {
		if bits == 128 && a.Is4() && ones >= 96 { // a v4 network written with a 16-byte mask
			ones -= 96
		} else {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// subtractPrefix returns p minus q as a list of prefixes.
func subtractPrefix(p, q netip.Prefix) []netip.Prefix {
	if p.Addr().Is4() != q.Addr().Is4() || !p.Overlaps(q) {
		return []netip.Prefix{p}
	}
	if q.Bits() <= p.Bits() {
		return nil // q covers p
	}
	// Walk down from p to q; at each level keep the half q is not in.
	out := make([]netip.Prefix, 0, q.Bits()-p.Bits())
	for b := p.Bits(); b < q.Bits(); b++ {
		half := netip.PrefixFrom(q.Addr(), b+1).Masked()
		out = append(out, netip.PrefixFrom(flipBit(half.Addr(), b), b+1))
	}
	return out
}

// flipBit flips bit i (0 = most significant) of a.
func flipBit(a netip.Addr, i int) netip.Addr {
	s := a.AsSlice()
	s[i/8] ^= 0x80 >> (i % 8)
	b, _ := netip.AddrFromSlice(s)
	return b
}
