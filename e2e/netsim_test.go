package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A simulated internet in network namespaces, for NAT traversal tests.
//
//	public peers (relay, ...)   10.200.<k>.2/24 --- core router 10.200.<k>.1
//	NAT j  WAN                  10.200.<100+j>.2/24 --- core 10.200.<100+j>.1
//	NAT j  LAN 192.168.<j>.1/24 --- home j 192.168.<j>.2/24
//
// Safety: every address is in a namespace the test created, all of them in
// 10.200.0.0/16 (the "public" core, made public to libp2p with
// swarm.public_ranges) or 192.168.<j>.0/24 (homes). No namespace has a
// default route or any route out of 10.200.0.0/16, and no veth has an end
// in the root namespace, so nothing a daemon does here can leave the
// simulation. Namespaces (and with them their nftables rulesets) are removed
// in t.Cleanup, rulesets explicitly first.

// simCore is the range of the simulated internet; it is the daemons'
// swarm.public_ranges.
const simCore = "10.200.0.0/16"

// internet is one simulated internet.
type internet struct {
	t    *testing.T
	tag  string // namespace name prefix, unique per test process
	core string // the core router's namespace
}

// needNetSim skips unless the test can build namespaces, and fails if a
// tool is missing (CI runs as root and .ci/run installs them).
func needNetSim(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s: apt-get install iproute2 nftables", tool)
		}
	}
}

// newInternet makes the core router namespace. tag must be short (network
// interface names are at most 15 bytes) and unique among running tests.
func newInternet(t *testing.T, tag string) *internet {
	t.Helper()
	in := &internet{t: t, tag: tag}
	in.core = netns(t, tag+"c")
	in.sysctl(in.core, "net.ipv4.ip_forward=1")
	return in
}

func (in *internet) sysctl(ns, kv string) {
	in.t.Helper()
	run(in.t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", kv)
}

// route adds a route to the simulated internet (and nothing else) in ns.
func (in *internet) route(ns, via string) {
	in.t.Helper()
	run(in.t, "ip", "-n", ns, "route", "add", simCore, "via", via)
}

// addPublic makes public host number k (1..99), named by the one letter or
// digit name, and returns its namespace and its address.
func (in *internet) addPublic(name string, k int) (ns, ip string) {
	in.t.Helper()
	ns = netns(in.t, in.tag+name)
	ip = fmt.Sprintf("10.200.%d.2", k)
	link(in.t, ns, ip+"/24", in.core, fmt.Sprintf("10.200.%d.1/24", k))
	in.route(ns, fmt.Sprintf("10.200.%d.1", k))
	return ns, ip
}

// NAT behaviours.
const (
	// coneNAT is nftables' plain masquerade: one mapping per connection, but
	// it keeps the source port when it is free, so a host that dials every
	// peer from one port (libp2p's TCP port reuse, QUIC's one socket) gets
	// one public address:port for all of them: endpoint-independent mapping
	// in practice. Unsolicited inbound packets are dropped, as a home
	// router's firewall does (address-and-port-dependent filtering).
	coneNAT = "masquerade"
	// symmetricNAT picks a random port for every new mapping, so each peer
	// sees another port and an address learnt from one is useless to others.
	symmetricNAT = "masquerade fully-random"
)

// addHome makes NAT j (1..99, named natName) with home j (homeName) behind
// it, and returns the home's namespace, its address and the NAT's public
// address.
func (in *internet) addHome(natName, homeName string, j int, nat string) (home, homeIP, natIP string) {
	in.t.Helper()
	n := netns(in.t, in.tag+natName)
	home = netns(in.t, in.tag+homeName)
	natIP = fmt.Sprintf("10.200.%d.2", 100+j)
	link(in.t, n, natIP+"/24", in.core, fmt.Sprintf("10.200.%d.1/24", 100+j))
	in.route(n, fmt.Sprintf("10.200.%d.1", 100+j))
	homeIP = fmt.Sprintf("192.168.%d.2", j)
	link(in.t, home, homeIP+"/24", n, fmt.Sprintf("192.168.%d.1/24", j))
	in.route(home, fmt.Sprintf("192.168.%d.1", j))
	in.sysctl(n, "net.ipv4.ip_forward=1")
	wan, lan := n+"-"+in.core[len(in.core)-1:], n+"-"+home[len(home)-1:]
	nftables(in.t, n, fmt.Sprintf(`table ip warren_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%[1]s" %[3]s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "%[2]s" oifname "%[1]s" accept
		iifname "%[1]s" oifname "%[2]s" ct state established,related accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "%[1]s" ct state new drop
	}
}
`, wan, lan, nat))
	return home, homeIP, natIP
}

// nftables loads ruleset into namespace ns and flushes it at cleanup
// (before the namespace itself goes).
func nftables(t *testing.T, ns, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s\n%s", ns, err, out, ruleset)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "exec", ns, "nft", "flush", "ruleset").Run() })
}

// conntrack returns the NAT mappings namespace ns holds, for logs.
func conntrack(ns string) string {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/nf_conntrack").CombinedOutput()
	if err != nil {
		out, _ = exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	}
	return string(out)
}

// newDefaultRepo makes a repo on the shipped default profile with only the
// settings a simulated internet needs changed: pairs as for setConfig.
func newDefaultRepo(t *testing.T, pairs ...string) string {
	t.Helper()
	repo := shortTemp(t) + "/r"
	ok(t, repo, "init", "--profile", "default")
	setConfig(t, repo, pairs...)
	return repo
}
