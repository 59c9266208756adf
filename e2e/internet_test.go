package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-p2p/warren/client"
)

// The public libp2p network in a simulated internet: four kubo daemons in
// the core play the public peers (bootstrap peers, relays with public
// relays' limits, AutoNAT servers), beside one warren node in a public role
// that serves the DHTs (kubo's WAN DHT keeps only peers with public
// addresses, and 10.200.0.0/16 is private to kubo). A and B sit behind two
// cone NATs on the shipped default profile; only their bootstrap list and
// public_ranges differ from it.

// publicKubo is a kubo daemon of the simulated core.
type publicKubo struct {
	t      *testing.T
	ns, ip string
	env    []string
	ID     string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	logMu  *sync.Mutex
	ready  chan struct{}
}

// newPublicKubo configures and starts kubo in namespace ns: listening on
// every address (TCP and QUIC, port 4001), reachability forced public so
// that it runs its relay service (libp2p's default limits: 2 min and
// 128 KiB per relayed connection, as public relays have) and answers
// AutoNAT, serving the DHT, with stream mounting for `ipfs p2p`. It does
// not wait for the daemon; see wait.
func newPublicKubo(t *testing.T, ns, ip string) *publicKubo {
	t.Helper()
	k := &publicKubo{t: t, ns: ns, ip: ip, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, ready: make(chan struct{})}
	k.env = append(os.Environ(), "IPFS_PATH="+filepath.Join(shortTemp(t), "ipfs"), "IPFS_TELEMETRY=off")
	k.run("init", "--profile=test")
	for _, kv := range [][]string{
		{"--json", "Addresses.Swarm", `["/ip4/0.0.0.0/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1"]`},
		{"--json", "Experimental.Libp2pStreamMounting", "true"},
		{"Internal.Libp2pForceReachability", "public"},
		{"--json", "Swarm.RelayService.Enabled", "true"},
		{"Routing.Type", "dhtserver"},
		{"AutoNAT.ServiceMode", "enabled"},
	} {
		k.run(append([]string{"config"}, kv...)...)
	}
	k.ID = k.run("config", "Identity.PeerID")
	ctx, cancel := context.WithCancel(context.Background())
	k.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns, kuboBinary(t), "daemon")
	k.cmd.Env = k.env
	w := lockedWriter{k.logMu, k.log}
	k.cmd.Stderr = w
	stdout, err := k.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kubo in %s: %v", ns, err)
	}
	t.Cleanup(func() { cancel(); _ = k.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = w.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Daemon is ready") {
				close(k.ready)
			}
		}
	}()
	return k
}

func (k *publicKubo) wait() {
	k.t.Helper()
	select {
	case <-k.ready:
	case <-time.After(90 * time.Second):
		k.logMu.Lock()
		defer k.logMu.Unlock()
		k.t.Fatalf("kubo in %s not ready after 90 s:\n%s", k.ns, k.log.String())
	}
}

// Addr is the kubo's TCP multiaddr in the core, with /p2p/ID.
func (k *publicKubo) Addr() string { return "/ip4/" + k.ip + "/tcp/4001/p2p/" + k.ID }

// run runs an ipfs command in the kubo's namespace (its API listens on
// the namespace's loopback).
func (k *publicKubo) run(args ...string) string {
	k.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", k.ns, kuboBinary(k.t)}, args...)...)
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("ipfs %s in %s: %v\n%s", strings.Join(args, " "), k.ns, err, out)
	}
	return strings.TrimSpace(string(out))
}

func statusOf(t *testing.T, d *daemon) client.Status {
	t.Helper()
	var st client.Status
	jsonOut(t, d.Repo, &st, "status", "--json")
	return st
}

func peerInfosOf(t *testing.T, d *daemon) []client.PeerInfo {
	t.Helper()
	var ps []client.PeerInfo
	jsonOut(t, d.Repo, &ps, "peers", "--json")
	return ps
}

// TestPublicNetworkAcrossTwoNATs is the zero-config path: A and B, each
// behind a home NAT on the default profile, know only the simulated public
// peers. B listens on a tunnel, A forwards to B by its peer ID alone, and
// 64 MiB go through byte-exact within 30 s, on a direct (hole-punched)
// connection, since the kubo relays cut relayed connections at 128 KiB.
// Then `status` on both says private with a relay reservation, messages
// and a topic work both ways, and a kubo peer reaches B's listener by B's
// peer ID with `ipfs p2p forward`.
func TestPublicNetworkAcrossTwoNATs(t *testing.T) {
	needNetSim(t)
	in := newInternet(t, fmt.Sprintf("p%d", os.Getpid()%100000))
	kubos := make([]*publicKubo, 4)
	for i := range kubos {
		ns, ip := in.addPublic(fmt.Sprint(i+1), i+1)
		kubos[i] = newPublicKubo(t, ns, ip)
	}
	nsW, ipW := in.addPublic("w", 5)
	homeA, _, _ := in.addHome("n", "a", 1, coneNAT)
	homeB, _, _ := in.addHome("m", "b", 2, coneNAT)
	for _, k := range kubos {
		k.wait()
	}

	public := "public_ranges = ['" + simCore + "']"
	// W: a warren node in a public role, serving warren's DHT and the
	// Amino DHT (dht = server); no relay service, so the relays are kubo's.
	repoW := newDefaultRepo(t, "public_ranges = []", public,
		"reachability = 'auto'", "reachability = 'public'", "dht = 'auto'", "dht = 'server'")
	w := startDaemonInNetns(t, nsW, repoW)
	var boot []string
	for _, k := range kubos {
		boot = append(boot, "'"+k.Addr()+"'")
	}
	boot = append(boot, "'/ip4/"+ipW+"/tcp/4101/p2p/"+w.ID+"'")
	bootstrap := "bootstrap = [" + strings.Join(boot, ", ") + "]"

	// A and B: the shipped default profile, but for these two lines.
	a := startDaemonInNetns(t, homeA, newDefaultRepo(t, "bootstrap = []", bootstrap, "public_ranges = []", public))
	b := startDaemonInNetns(t, homeB, newDefaultRepo(t, "bootstrap = []", bootstrap, "public_ranges = []", public))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WARREN_E2E_LOGS") != "" {
			for name, d := range map[string]*daemon{"W": w, "A": a, "B": b} {
				t.Logf("=== %s daemon log:\n%s", name, d.Output())
			}
			for name, d := range map[string]*daemon{"A": a, "B": b} {
				t.Logf("=== %s status:\n%s", name, cli(t, d.Repo, "status", "--json").Out)
			}
			t.Logf("=== NAT A conntrack:\n%s", conntrack(in.tag+"n"))
			t.Logf("=== NAT B conntrack:\n%s", conntrack(in.tag+"m"))
		}
	})
	isKubo := map[string]bool{}
	for _, k := range kubos {
		isKubo[k.ID] = true
	}

	// Both learn from AutoNAT that they are private, and reserve a slot
	// on a kubo relay.
	for name, d := range map[string]*daemon{"A": a, "B": b} {
		eventually(t, 90*time.Second, func() error {
			st := statusOf(t, d)
			if st.Reachability != "private" || st.ReachabilitySource != "autonat" || !st.PublicNetwork {
				return fmt.Errorf("%s: reachability %q from %q (public network %v)", name, st.Reachability, st.ReachabilitySource, st.PublicNetwork)
			}
			for _, r := range st.Relays {
				if isKubo[r.Relay] && len(r.Addrs) > 0 && strings.Contains(r.Addrs[0], "/p2p-circuit") {
					return nil
				}
			}
			return fmt.Errorf("%s: no reservation on a kubo relay: %+v", name, st.Relays)
		})
	}

	direct := t.Run("tunnel by peer ID, direct after hole punch", func(t *testing.T) {
		start := time.Now()
		c, _ := echoTunnel(t, a, b, 30*time.Second)
		echoBytes(t, c, c, 64<<20, "64 MiB through the tunnel")
		t.Logf("64 MiB each way in %v after the forward", time.Since(start))
		var pb client.PeerInfo
		for _, p := range peerInfosOf(t, a) {
			if p.ID == b.ID {
				pb = p
			}
		}
		if !pb.Direct || pb.Transport == "circuit" || strings.Contains(pb.Addr, "/p2p-circuit") || pb.Limited {
			t.Fatalf("A's connection to B is not direct: %+v", pb)
		}
		t.Logf("A reaches B on %s (%s)", pb.Addr, pb.Transport)
		// The direct connection came from DCUtR: B (which got the relayed
		// connection) punched, and both sides counted the success.
		for name, d := range map[string]*daemon{"A": a, "B": b} {
			st := statusOf(t, d)
			if st.HolePunch.Successes < 1 {
				t.Errorf("%s counted no successful hole punch: %+v", name, st.HolePunch)
			}
			if st.Reachability != "private" || len(st.Relays) == 0 {
				t.Errorf("%s's status after the tunnel: %s with %d relays", name, st.Reachability, len(st.Relays))
			}
			if !strings.Contains(ok(t, d.Repo, "status"), "behind NAT") {
				t.Errorf("%s's status text does not say it is behind NAT", name)
			}
		}
		t.Logf("B's warren status:\n%s", ok(t, b.Repo, "status"))
		if out := ok(t, a.Repo, "status", "--wide"); !regexp.MustCompile(b.ID + `\s+direct\s`).MatchString(out) {
			t.Errorf("A's status does not list B as direct:\n%s", out)
		}
	})
	if !direct {
		t.FailNow() // the rest needs the connection
	}

	t.Run("messages both ways", func(t *testing.T) {
		for _, dir := range [][2]*daemon{{a, b}, {b, a}} {
			from, to := dir[0], dir[1]
			recv := startCLI(t, to.Repo, nil, "recv", "chat", "-n", "1", "--json")
			waitSubscribers(t, to.Repo, "chat", 1)
			ok(t, from.Repo, "send", to.ID, "chat", "hello from "+from.ID)
			if l := recv.Line(); !strings.Contains(l, "hello from "+from.ID) {
				t.Errorf("recv on %s got %q", to.ID, l)
			}
			recv.Wait(10 * time.Second)
		}
	})

	t.Run("topic", func(t *testing.T) {
		sub := startCLI(t, b.Repo, nil, "sub", "news", "--json", "-n", "1")
		waitTopicSubscriptions(t, b.Repo, "news", 1)
		got := lines(sub)
		start := time.Now()
		for attempt := 1; ; attempt++ {
			r := cli(t, a.Repo, "pub", "news", fmt.Sprintf("across two NATs %d", attempt), "--timeout", "20s")
			select {
			case l, open := <-got:
				if !open {
					t.Fatalf("sub ended without a message: %s", sub.Stderr())
				}
				if m := parseTopicMsg(t, l); m.From != a.ID {
					t.Fatalf("message from %s, want A", m.From)
				}
				return
			case <-time.After(3 * time.Second):
				if time.Since(start) > 60*time.Second {
					t.Fatalf("no message reached B within 60 s; last pub: exit %d %s", r.Code, r.Err)
				}
			}
		}
	})

	t.Run("kubo reaches B by peer ID", func(t *testing.T) {
		ok(t, b.Repo, "tunnel", "listen", "/x/kubo-echo", "/unix"+echoServer(t))
		k := kubos[0]
		front := filepath.Join(shortTemp(t), "kubo-front.sock")
		k.run("p2p", "forward", "/x/kubo-echo", "/unix"+front, "/p2p/"+b.ID)
		c, err := net.DialTimeout("unix", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		echoBytes(t, c, c, 1<<20, "1 MiB from kubo through B's listener")
	})
}
