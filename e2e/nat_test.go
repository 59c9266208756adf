package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// natPeer is one connected peer as `warren peers --json` prints it.
type natPeer struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	Limited bool   `json:"limited"`
}

func peersOf(t *testing.T, d *daemon) []natPeer {
	t.Helper()
	var ps []natPeer
	jsonOut(t, d.Repo, &ps, "peers", "--json")
	return ps
}

// natWorld is the simulated internet of the NAT tests: a relay in the
// core, A behind NAT 1, B behind NAT 2, all on the default profile.
type natWorld struct {
	in           *internet
	relay, a, b  *daemon
	natA, natB   string // NAT namespaces
	homeA, homeB string
}

// newNATWorld builds the topology and starts the daemons. The relay keeps
// libp2p's default relay limits (2 min, 128 KiB per relayed connection, as
// public relays have), so a tunnel of more than 128 KiB can only work on
// a direct connection.
//
// relayPairs are further edits of the relay's config (as for setConfig).
func newNATWorld(t *testing.T, nat string, relayPairs ...string) *natWorld {
	t.Helper()
	needNetSim(t)
	w := &natWorld{}
	w.in = newInternet(t, fmt.Sprintf("n%d", os.Getpid()%100000))
	nsR, ipR := w.in.addPublic("r", 1)
	var ipNatA, ipNatB string
	w.homeA, _, ipNatA = w.in.addHome("n", "a", 1, nat)
	w.homeB, _, ipNatB = w.in.addHome("m", "b", 2, nat)
	w.natA, w.natB = w.in.tag+"n", w.in.tag+"m"
	t.Logf("relay %s, NAT A %s, NAT B %s", ipR, ipNatA, ipNatB)

	public := "public_ranges = ['" + simCore + "']"
	// The relay: the default profile, a public node of the simulated
	// internet running the relay service with its default limits.
	repoR := newDefaultRepo(t, append([]string{
		"public_ranges = []", public,
		"relay_service = false", "relay_service = true",
		"reachability = 'auto'", "reachability = 'public'"}, relayPairs...)...)
	w.relay = startDaemonInNetns(t, nsR, repoR)
	boot := "bootstrap = ['/ip4/" + ipR + "/tcp/4101/p2p/" + w.relay.ID + "']"

	// A and B: the default profile, except that they know the relay and
	// that the core counts as public.
	repoA := newDefaultRepo(t, "bootstrap = []", boot, "public_ranges = []", public)
	repoB := newDefaultRepo(t, "bootstrap = []", boot, "public_ranges = []", public)
	w.a = startDaemonInNetns(t, w.homeA, repoA)
	w.b = startDaemonInNetns(t, w.homeB, repoB)
	t.Cleanup(func() {
		// WARREN_E2E_LOGS=1 (with GOLOG_LOG_LEVEL=p2p-holepunch=debug,...)
		// shows the logs of a passing run too.
		if t.Failed() || os.Getenv("WARREN_E2E_LOGS") != "" {
			for name, d := range map[string]*daemon{"relay": w.relay, "A": w.a, "B": w.b} {
				t.Logf("=== %s daemon log:\n%s", name, d.Output())
			}
			t.Logf("=== NAT A conntrack:\n%s", conntrack(w.natA))
			t.Logf("=== NAT B conntrack:\n%s", conntrack(w.natB))
		}
	})
	return w
}

// waitRelayed waits until A and B are connected to the relay and B,
// behind its NAT, is reachable through it: a reservation shows as a
// /p2p-circuit address of B's.
func (w *natWorld) waitRelayed(t *testing.T) {
	t.Helper()
	for name, d := range map[string]*daemon{"A": w.a, "B": w.b} {
		eventually(t, 30*time.Second, func() error {
			for _, p := range peersOf(t, d) {
				if p.ID == w.relay.ID {
					return nil
				}
			}
			return fmt.Errorf("%s never connected to the relay", name)
		})
	}
	eventually(t, 60*time.Second, func() error {
		var id struct {
			Addrs []string `json:"addrs"`
		}
		jsonOut(t, w.b.Repo, &id, "id", "--json")
		for _, s := range id.Addrs {
			if strings.Contains(s, "/p2p/"+w.relay.ID+"/p2p-circuit") {
				return nil
			}
		}
		return fmt.Errorf("B has no relay address: %v", id.Addrs)
	})
}

// echoServer serves an echo on a unix socket (reachable from every
// namespace: it is a file) and returns its path.
func echoServer(t *testing.T) string {
	t.Helper()
	path := filepath.Join(shortTemp(t), "echo.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return path
}

// echoTunnel has b serve /x/echo (an echo server, a allowed) and a forward
// it on a unix socket, and returns a client connection through the tunnel,
// whose deadline is d from now, and the socket's path.
func echoTunnel(t *testing.T, a, b *daemon, d time.Duration) (net.Conn, string) {
	t.Helper()
	ok(t, b.Repo, "tunnel", "listen", "/x/echo", "/unix"+echoServer(t), "--allow", a.ID)
	front := filepath.Join(shortTemp(t), "front.sock")
	ok(t, a.Repo, "tunnel", "forward", "/x/echo", "/unix"+front, b.ID)
	c, err := net.DialTimeout("unix", front, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(d))
	return c, front
}

// echoBytes writes size patterned bytes to w while reading their echo from
// r, and fails unless exactly the same bytes come back. what names the
// transfer in the failure.
func echoBytes(t *testing.T, w io.Writer, r io.Reader, size int, what string) {
	t.Helper()
	blob := make([]byte, size)
	for i := range blob {
		blob[i] = byte(i*7 + i>>11)
	}
	want := sha256.Sum256(blob)
	start := time.Now()
	werr := make(chan error, 1)
	go func() { _, err := w.Write(blob); werr <- err }()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, int64(size)))
	if err != nil || n != int64(size) {
		t.Fatalf("%s: %d of %d bytes back after %v: %v", what, n, size, time.Since(start), err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("%s came back different", what)
	}
}

// TestHolePunchAcrossTwoNATs: A and B sit behind separate cone NATs and
// know only a relay in the core. B listens on a tunnel; A forwards to B by
// B's peer ID; 64 MiB go through byte-exact, which the relay's 128 KiB
// limit would cut, and A's connection to B is direct.
func TestHolePunchAcrossTwoNATs(t *testing.T) {
	w := newNATWorld(t, coneNAT)
	a, b := w.a, w.b

	w.waitRelayed(t)

	// The forward connects when its first client comes; the hole punch
	// follows the relayed connection.
	start := time.Now()
	c, _ := echoTunnel(t, a, b, 30*time.Second)
	echoBytes(t, c, c, 64<<20, "64 MiB through the tunnel")
	t.Logf("64 MiB each way in %v", time.Since(start))

	direct := false
	for _, p := range peersOf(t, a) {
		if p.ID == b.ID {
			direct = !p.Limited && !strings.Contains(p.Addr, "/p2p-circuit")
			t.Logf("A's connection to B: %s (limited %v)", p.Addr, p.Limited)
		}
	}
	if !direct {
		t.Fatalf("A is not directly connected to B: %+v", peersOf(t, a))
	}
	a.Stop()
	b.Stop()
	w.relay.Stop()
}

// TestHolePunchFailsAcrossSymmetricNATs: the same world, but both NATs
// pick a random port for every mapping, so the address the relay observed
// is useless to the other peer and hole punching cannot work. The forward
// waits tunnels.direct_wait for a direct connection, then refuses the
// relayed one, whose 128 KiB limit would cut the tunnel: the client's
// connection ends within the forward's dial timeout, `tunnel ls` and the
// log carry one line naming B, each step tried and the fix, and B's status
// counts the failed hole punches.
func TestHolePunchFailsAcrossSymmetricNATs(t *testing.T) {
	w := newNATWorld(t, symmetricNAT)
	a, b := w.a, w.b
	w.waitRelayed(t)

	c, _ := echoTunnel(t, a, b, 40*time.Second)
	start := time.Now()
	if _, err := io.WriteString(c, "hello across two symmetric NATs\n"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatalf("%d bytes came back over a relay whose limit (128 KiB) would cut a tunnel", n)
	}
	// The client's connection ended only after the forward had waited for
	// a hole punch (tunnels.direct_wait, 15 s) in vain, and within its
	// dial timeout (tunnels.dial_timeout, 30 s).
	if took := time.Since(start); took < 14*time.Second || took > 31*time.Second {
		t.Errorf("the forward failed after %v, want between direct_wait and dial_timeout", took)
	}
	var last string
	for _, ti := range tunnels(t, a) {
		if ti.Kind == "forward" {
			last = ti.LastError
		}
	}
	for _, want := range []string{"cannot reach peer " + b.ID, "direct dial: ", "relay: only through relay " + w.relay.ID,
		"which cuts each connection after 131072 bytes", "hole punch: ", "Fix: run a relay of your own", "[swarm.relay_limit]", "announce"} {
		if !strings.Contains(last, want) {
			t.Errorf("the forward's last_error lacks %q: %q", want, last)
		}
	}
	if strings.Contains(last, "\n") {
		t.Errorf("last_error spans lines: %q", last)
	}
	// The daemon logs after it has reset the client, through a pipe.
	eventually(t, 5*time.Second, func() error {
		if out := a.Output(); !strings.Contains(out, "cannot reach peer "+b.ID) {
			return fmt.Errorf("A's log does not say why the forward failed:\n%s", out)
		}
		return nil
	})
	for _, p := range peersOf(t, a) {
		if p.ID == b.ID && (!p.Limited || !strings.Contains(p.Addr, "/p2p-circuit")) {
			t.Fatalf("A reached B directly across symmetric NATs: %+v", p)
		}
	}
	// B got the relayed connection, so B punched; it failed, and its
	// status says so.
	eventually(t, 20*time.Second, func() error {
		st := statusOf(t, b)
		if st.HolePunch.Failures == 0 || st.HolePunch.Successes != 0 {
			return fmt.Errorf("B's hole punches: %+v", st.HolePunch)
		}
		return nil
	})
	if out := ok(t, b.Repo, "status"); !strings.Contains(out, "0 succeeded") {
		t.Errorf("B's status text does not show the failed hole punches:\n%s", out)
	}

	// Direct messages follow the tunnels' rule: no data over a relay that
	// cuts a connection after 128 KiB. A already waited for a hole punch on
	// this relayed connection (the forward did: hole punching had its
	// tunnels.direct_wait), so send and request fail at once with the
	// forward's one-line error.
	relayTooSmall := func(p string) []string {
		return []string{"cannot reach peer " + p, "direct dial: ", "relay: only through relay " + w.relay.ID,
			"which cuts each connection after 131072 bytes", "hole punch: ", "Fix: run a relay of your own", "[swarm.relay_limit]", "announce"}
	}
	start = time.Now()
	line := fails(t, a.Repo, relayTooSmall(b.ID), "send", b.ID, "chat", "hello over a public relay")
	t.Logf("A's send failed after %v: %s", time.Since(start), line)
	start = time.Now()
	line = fails(t, a.Repo, relayTooSmall(b.ID), "request", b.ID, "up", "hello")
	t.Logf("A's request failed after %v: %s", time.Since(start), line)
	// A new relayed connection gets its own chance: B drops its connection
	// to A and requests by peer ID; the request reconnects through the
	// relay, waits for a hole punch until half its timeout is gone (the
	// rest is room for the stream), then says why it cannot use the relay
	// (not "timed out").
	ok(t, b.Repo, "disconnect", a.ID)
	start = time.Now()
	line = fails(t, b.Repo, relayTooSmall(a.ID), "request", a.ID, "up", "hello", "--timeout", "6s")
	took := time.Since(start)
	t.Logf("B's request (--timeout 6s) on a new relayed connection failed after %v: %s", took, line)
	if took < 2*time.Second {
		t.Errorf("B's request failed after %v, without waiting for a hole punch", took)
	}
	if strings.Contains(line, "timed out") {
		t.Errorf("B's request says it timed out, not why: %s", line)
	}
	a.Stop()
	b.Stop()
	w.relay.Stop()
}

// TestRelayOfYourOwnAcrossSymmetricNATs: when hole punching cannot work,
// a relay of your own whose swarm.relay_limit is raised carries the tunnel.
func TestRelayOfYourOwnAcrossSymmetricNATs(t *testing.T) {
	w := newNATWorld(t, symmetricNAT, "data = 131072", "data = 0") // no data limit; 2 min still
	a, b := w.a, w.b
	w.waitRelayed(t)

	// A message by peer ID: found in the DHT, connected through the relay,
	// a hole punch waited for in vain (tunnels.direct_wait), then sent over
	// the relay, whose limits allow it. A request then goes at once.
	recv := startCLI(t, b.Repo, nil, "recv", "chat", "-n", "1", "--raw")
	startCLI(t, b.Repo, nil, "respond", "up", "--echo")
	waitSubscribers(t, b.Repo, "chat", 1)
	waitHandler(t, b.Repo, "up")
	start := time.Now()
	if out := ok(t, a.Repo, "send", b.ID, "chat", "hello over your own relay"); out != "sent 1 message to "+b.ID+"\n" {
		t.Errorf("send printed %q", out)
	}
	t.Logf("send by peer ID over your own relay took %v", time.Since(start))
	if got := recv.Line(); got != "hello over your own relay" {
		t.Errorf("B received %q", got)
	}
	if out := ok(t, a.Repo, "request", b.ID, "up", "ping"); out != "ping\n" {
		t.Errorf("request printed %q, want the echo", out)
	}

	c, _ := echoTunnel(t, a, b, 50*time.Second)
	// 4 MiB each way: 32 times a public relay's limit.
	echoBytes(t, c, c, 4<<20, "4 MiB through your own relay")
	for _, p := range peersOf(t, a) {
		if p.ID == b.ID && !p.Limited {
			t.Fatalf("A reached B directly across symmetric NATs: %+v", p)
		}
	}
	a.Stop()
	b.Stop()
	w.relay.Stop()
}
