package node

import (
	"net/netip"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestSubtractPrefix(t *testing.T) {
	p := netip.MustParsePrefix
	got := subtractPrefix(p("10.0.0.0/8"), p("10.200.0.0/16"))
	want := []string{"10.0.0.0/9", "10.128.0.0/10", "10.224.0.0/11", "10.208.0.0/12", "10.192.0.0/13", "10.204.0.0/14", "10.202.0.0/15", "10.201.0.0/16"}
	if len(got) != len(want) {
		t.Fatalf("10/8 - 10.200/16 = %v, want %v", got, want)
	}
	// The parts cover /8 minus /16 exactly: disjoint from the hole and
	// from each other, with the right total size.
	var total uint64
	for i, g := range got {
		if g.String() != want[i] {
			t.Errorf("part %d: %s, want %s", i, g, want[i])
		}
		if g.Overlaps(p("10.200.0.0/16")) {
			t.Errorf("part %s overlaps the removed range", g)
		}
		total += 1 << (32 - g.Bits())
	}
	if total != 1<<24-1<<16 {
		t.Errorf("parts cover %d addresses, want %d", total, 1<<24-1<<16)
	}
	if r := subtractPrefix(p("10.200.0.0/16"), p("10.0.0.0/8")); len(r) != 0 {
		t.Errorf("a covered prefix should vanish: %v", r)
	}
	if r := subtractPrefix(p("192.168.0.0/16"), p("10.0.0.0/8")); len(r) != 1 || r[0] != p("192.168.0.0/16") {
		t.Errorf("a disjoint prefix should stay: %v", r)
	}
}

// TestUsePublicRanges changes the process-wide ranges, as a daemon does
// once at start. Nothing else in this package's tests depends on 10.200/16
// or 198.51.100/24 being private.
func TestUsePublicRanges(t *testing.T) {
	public := func(s string) bool { return manet.IsPublicAddr(ma.StringCast(s)) }
	if public("/ip4/10.200.1.1/tcp/1") {
		t.Fatal("10.200.1.1 is public before any ranges are set")
	}
	if err := usePublicRanges([]string{"10.200.0.0/16", "198.51.100.0/24"}); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"/ip4/10.200.1.1/tcp/1":     true,
		"/ip4/10.200.255.255/udp/1": true,
		"/ip4/198.51.100.7/tcp/1":   true,  // was unroutable (documentation range)
		"/ip4/10.201.0.1/tcp/1":     false, // the rest of 10/8 stays private
		"/ip4/10.199.255.255/tcp/1": false,
		"/ip4/192.168.1.2/tcp/1":    false,
		"/ip4/127.0.0.1/tcp/1":      false,
		"/ip4/198.51.101.1/tcp/1":   true, // public before, still public
		"/ip4/203.0.113.1/tcp/1":    false,
	} {
		if got := public(addr); got != want {
			t.Errorf("IsPublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	if manet.IsPrivateAddr(ma.StringCast("/ip4/10.200.1.1/tcp/1")) || !manet.IsPrivateAddr(ma.StringCast("/ip4/10.9.0.1/tcp/1")) {
		t.Error("IsPrivateAddr does not follow the ranges")
	}
	// Idempotent, whatever the order; a different set is refused.
	n := len(manet.Private4)
	if err := usePublicRanges([]string{"198.51.100.0/24", "10.200.0.0/16", "10.200.0.0/16"}); err != nil {
		t.Fatalf("same ranges again: %v", err)
	}
	if len(manet.Private4) != n {
		t.Error("applying the same ranges again changed the lists")
	}
	err := usePublicRanges([]string{"10.201.0.0/16"})
	if err == nil || !strings.Contains(err.Error(), "process-wide") {
		t.Errorf("other ranges: %v, want a process-wide refusal", err)
	}
	if public("/ip4/10.201.0.1/tcp/1") {
		t.Error("a refused range was applied")
	}
	if err := usePublicRanges(nil); err != nil {
		t.Errorf("no ranges: %v", err)
	}
}
