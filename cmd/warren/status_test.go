package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/warren-p2p/warren/client"
)

// The text of warren status says why a node can or cannot be reached, and
// what would help, for the cases a user meets.
func TestStatusTextSaysWhy(t *testing.T) {
	now := time.Now()
	relay := client.RelayReservation{Relay: "12D3KooWRelay", Addrs: []string{"/ip4/10.200.0.2/tcp/4001/p2p/12D3KooWRelay/p2p-circuit"}, Expires: now.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		st   client.Status
		want []string
	}{
		{"public", client.Status{Reachability: "public", ReachabilitySource: "autonat"},
			[]string{"dial this node directly", "probed by peers through AutoNAT"}},
		{"private with relay", client.Status{Reachability: "private", ReachabilitySource: "autonat", Relays: []client.RelayReservation{relay}},
			[]string{"behind NAT", "through 1 relay", "12D3KooWRelay  expires in 1h0m0s", "/p2p-circuit"}},
		{"private without relay", client.Status{Reachability: "private", ReachabilitySource: "config"},
			[]string{"no relay reservation", "relay_service", "set by [swarm] reachability"}},
		{"symmetric", client.Status{Reachability: "private", NATTypes: map[string]string{"udp": "symmetric", "tcp": "symmetric"},
			HolePunch: client.HolePunchStats{Attempts: 1, Failures: 1, Recent: []client.HolePunchAttempt{{Peer: "p", Outcome: "failure", Error: "all dials failed"}}}},
			[]string{"symmetric", "hole punching cannot work", "[swarm.relay_limit]", "1 attempts, 0 succeeded, 1 failed", "all dials failed", "tcp symmetric, udp symmetric"}},
		{"alone", client.Status{Reachability: "unknown", ReachabilitySource: "none", PortMapping: client.PortMapping{State: "off"}},
			[]string{"no peers to ask", "nat_port_map = false"}},
	} {
		var b bytes.Buffer
		if err := printStatus(&b, tc.st, now, true); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, b.String())
			}
		}
	}
}

// Other peers' IDs are short unless --wide, as in the other tables; the
// node's own ID stays whole.
func TestStatusShortensOtherPeers(t *testing.T) {
	self := "12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfSelf"
	other := "12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherXyZ"
	st := client.Status{ID: self, Reachability: "private",
		Relays:    []client.RelayReservation{{Relay: other}},
		HolePunch: client.HolePunchStats{Attempts: 1, Successes: 1, Recent: []client.HolePunchAttempt{{Peer: other, Outcome: "success"}}},
		Peers:     []client.PeerInfo{{ID: other, Direct: true, Transport: "tcp"}}}
	var b bytes.Buffer
	if err := printStatus(&b, st, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), self) {
		t.Errorf("own ID not whole:\n%s", b.String())
	}
	if strings.Contains(b.String(), other) || strings.Count(b.String(), shortID(other, false)) != 3 {
		t.Errorf("other peer's ID not shortened in the relay, hole-punch and peer lines:\n%s", b.String())
	}
	b.Reset()
	if err := printStatus(&b, st, time.Now(), true); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), other) != 3 {
		t.Errorf("--wide does not show the full ID three times:\n%s", b.String())
	}
}
