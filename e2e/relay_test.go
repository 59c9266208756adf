package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netns creates a network namespace with loopback up and removes it when
// the test ends.
func netns(t *testing.T, name string) string {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// link joins namespaces a and b with a veth pair named after both ends
// and gives each end an address (CIDR form).
func link(t *testing.T, a, addrA, b, addrB string) {
	t.Helper()
	ifA, ifB := a+"-"+b[len(b)-1:], b+"-"+a[len(a)-1:] // e.g. w123a-r in A, w123r-a in R
	if len(ifA) > 15 || len(ifB) > 15 {
		t.Fatalf("interface names %q/%q too long", ifA, ifB)
	}
	run(t, "ip", "link", "add", ifA, "netns", a, "type", "veth", "peer", "name", ifB, "netns", b)
	run(t, "ip", "-n", a, "addr", "add", addrA, "dev", ifA)
	run(t, "ip", "-n", b, "addr", "add", addrB, "dev", ifB)
	run(t, "ip", "-n", a, "link", "set", ifA, "up")
	run(t, "ip", "-n", b, "link", "set", ifB, "up")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestTunnelThroughRelayAcrossNamespaces is the "service behind NAT" case
// with separate hosts: A and B live in network namespaces with no route to
// each other; both reach relay R. A, which says it is private, reserves a
// slot on R; B reaches A by its circuit address and forwards a tunnel to a
// service next to A, all from the CLI.
func TestTunnelThroughRelayAcrossNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("this test needs iproute2's ip command: apt-get install iproute2")
	}
	tag := fmt.Sprintf("w%d", os.Getpid()%100000)
	nsA, nsB, nsR := netns(t, tag+"a"), netns(t, tag+"b"), netns(t, tag+"r")
	// Two separate links; R does not forward, so A and B cannot reach each other.
	link(t, nsA, "10.213.1.2/24", nsR, "10.213.1.1/24")
	link(t, nsB, "10.213.2.2/24", nsR, "10.213.2.1/24")

	repoR, repoA, repoB := newRepo(t), newRepo(t), newRepo(t)
	setConfig(t, repoR,
		"listen = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1']", "listen = ['/ip4/0.0.0.0/tcp/4101']",
		"relay_service = false", "relay_service = true",
		"reachability = 'auto'", "reachability = 'public'",
		"data = 131072", "data = 8388608") // 8 MiB: libp2p's default 128 KiB would cut the transfer below

	r := startDaemonInNetns(t, nsR, repoR)
	viaA := "/ip4/10.213.1.1/tcp/4101/p2p/" + r.ID // R as A sees it
	viaB := "/ip4/10.213.2.1/tcp/4101/p2p/" + r.ID // R as B sees it

	setConfig(t, repoA,
		"listen = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1']", "listen = ['/ip4/0.0.0.0/tcp/0']",
		"relay_client = false", "relay_client = true",
		"reachability = 'auto'", "reachability = 'private'",
		"static_relays = []", "static_relays = ['"+viaA+"']")
	a := startDaemonInNetns(t, nsA, repoA)
	setConfig(t, repoB,
		"listen = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1']", "listen = ['/ip4/0.0.0.0/tcp/0']",
		"relay_client = false", "relay_client = true")
	b := startDaemonInNetns(t, nsB, repoB)

	// A direct dial from B to A cannot work: no route.
	var idA struct {
		Addrs []string `json:"addrs"`
	}
	jsonOut(t, a.Repo, &idA, "id", "--json")
	for _, addr := range idA.Addrs {
		if strings.Contains(addr, "/10.213.1.2/") {
			fails(t, b.Repo, nil, "connect", addr)
		}
	}

	// B reaches A through R once A's reservation is in place.
	circuit := viaB + "/p2p-circuit/p2p/" + a.ID
	eventually(t, 30*time.Second, func() error {
		if r := cli(t, b.Repo, "connect", circuit); r.Code != 0 {
			return fmt.Errorf("connect through the relay: %s", r.Err)
		}
		return nil
	})
	var peers []struct {
		ID      string `json:"id"`
		Addr    string `json:"addr"`
		Limited bool   `json:"limited"`
	}
	jsonOut(t, b.Repo, &peers, "peers", "--json")
	relayed := false
	for _, p := range peers {
		if p.ID == a.ID {
			relayed = p.Limited && strings.Contains(p.Addr, "/p2p-circuit")
		}
	}
	if !relayed {
		t.Fatalf("B's connection to A is not the relayed one: %+v", peers)
	}

	// A service next to A (a unix socket, reachable from A's namespace),
	// exposed by A and forwarded by B to a unix socket this test dials.
	dir := shortTemp(t)
	target := filepath.Join(dir, "svc.sock")
	l, err := net.Listen("unix", target)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c) // echo
			}()
		}
	}()
	ok(t, a.Repo, "tunnel", "listen", "/x/echo", "/unix"+target, "--allow", b.ID)
	front := filepath.Join(dir, "front.sock")
	ok(t, b.Repo, "tunnel", "forward", "/x/echo", "/unix"+front, a.ID)

	c, err := net.DialTimeout("unix", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	const line = "hello from B, through R, to the service next to A\n"
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	got, err := br.ReadString('\n')
	if err != nil || got != line {
		t.Fatalf("echo through the relayed tunnel: %q, %v", got, err)
	}
	// 1 MiB each way, eight times libp2p's default relay data limit, which
	// this relay raised in its config.
	echoBytes(t, c, br, 1<<20, "1 MiB through the relayed tunnel")
	a.Stop()
	b.Stop()
	r.Stop()
}
