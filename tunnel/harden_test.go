package tunnel_test

import (
	"bytes"
	"context"
	"errors"
	ma "github.com/multiformats/go-multiaddr"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-p2p/warren/tunnel"

	"github.com/warren-p2p/warren/internal/testutil"
)

// shortTempDir is a temporary directory with a short path (unix socket
// paths are limited to ~100 bytes).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func wantInvalid(t *testing.T, what string, err error, mention ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted, want ErrInvalid", what)
	}
	if !errors.Is(err, tunnel.ErrInvalid) {
		t.Errorf("%s: error %v is not ErrInvalid", what, err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: error %q does not mention %q", what, err, m)
		}
	}
}

// A listen tunnel to the repo's api.sock, directly or through a symlink to
// the directory or to the socket, is refused; so is a forward socket in the
// repo. A unix target elsewhere is fine.
func TestUnixPathsInsideRepoRefused(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	repo, other := shortTempDir(t), shortTempDir(t)
	api := filepath.Join(repo, "api.sock")
	ln, err := net.Listen("unix", api)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Symlink(repo, filepath.Join(other, "repo")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(api, filepath.Join(other, "s.sock")); err != nil {
		t.Fatal(err)
	}
	h, peerH := e.host(), e.host()
	m := e.manager(h, tunnel.Options{RepoDir: repo})
	ctx := context.Background()
	for _, target := range []string{
		"/unix" + api,
		"/unix" + filepath.Join(other, "repo", "api.sock"), // symlinked directory
		"/unix" + filepath.Join(other, "s.sock"),           // symlinked socket
		"/unix" + filepath.Join(repo, "not-yet", "x.sock"), // missing parent inside the repo
	} {
		_, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/api", Target: ma.StringCast(target)})
		wantInvalid(t, "listen to "+target, err, target, "repo directory")
	}
	_, err = m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/f", ListenAddr: ma.StringCast("/unix" + filepath.Join(repo, "f.sock")), Peer: peerH.ID()})
	wantInvalid(t, "forward in the repo", err, filepath.Join(repo, "f.sock"), "repo directory")
	if _, err := os.Stat(filepath.Join(repo, "f.sock")); err == nil {
		t.Error("a refused forward created its socket in the repo")
	}
	if _, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/ok", Target: ma.StringCast("/unix" + filepath.Join(other, "app.sock"))}); err != nil {
		t.Fatalf("unix target outside the repo: %v", err)
	}
	if n := len(m.List()); n != 1 {
		t.Fatalf("List has %d tunnels, want 1", n)
	}
}

// A saved listener to the API socket fails closed at restore: listed with
// the error, not serving.
func TestRestoreTargetInsideRepoFailsClosed(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	repo := shortTempDir(t)
	path := filepath.Join(repo, "tunnels.json")
	doc := `{"version":1,"tunnels":[{"kind":"listen","listen":{"protocol":"/x/api","target":"/unix` + filepath.Join(repo, "api.sock") + `"}}]}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h := e.host()
	m := e.manager(h, tunnel.Options{RepoDir: repo, StatePath: path})
	got := m.Restore(context.Background())
	if len(got) != 1 || !strings.Contains(got[0].Error, "repo directory") {
		t.Fatalf("Restore = %+v, want the tunnel listed with the repo error", got)
	}
	if slices.Contains(h.Mux().Protocols(), protocol.ID("/x/api")) {
		t.Fatal("the listener to api.sock serves")
	}
}

func TestUnixPathMustBeAbsoluteAndClean(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	h, peerH := e.host(), e.host()
	m := e.manager(h, tunnel.Options{})
	ctx := context.Background()
	for _, addr := range []string{"/unix/./a.sock", "/unix/tmp/../a.sock", "/unix/tmp/./x/a.sock"} {
		_, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/u", Target: ma.StringCast(addr)})
		wantInvalid(t, "listen to "+addr, err, addr, "absolute")
		_, err = m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/u", ListenAddr: ma.StringCast(addr), Peer: peerH.ID()})
		wantInvalid(t, "forward on "+addr, err, addr, "absolute")
	}
}

// A forward's unix socket is 0600 whatever the umask, works, refuses to
// replace an existing file, leaves no temporary file and goes on close.
func TestForwardUnixSocketMode(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	dir := shortTempDir(t)
	path := filepath.Join(dir, "f.sock")
	in, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/unix" + path), Peer: p.server.ID(), Addrs: p.server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	if in.ListenAddress.String() != "/unix"+path {
		t.Errorf("listen address %q, want /unix%s", in.ListenAddress, path)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(ents))
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hi"))
	got := make([]byte, 2)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
		t.Fatalf("echo through the unix forward: %q %v", got, err)
	}
	// The client's end is a /unix multiaddr (Linux names an unbound client
	// socket "@"), the remote end the server's connection address.
	var found bool
	for _, st := range p.cm.Streams() {
		if st.TunnelID != in.ID {
			continue
		}
		found = true
		n := len(st.RemoteAddr)
		if len(st.LocalAddr) != 1 || st.LocalAddr[0].Code() != ma.P_UNIX || st.Peer != p.server.ID() ||
			n < 2 || st.RemoteAddr[n-1].Code() != ma.P_P2P || st.RemoteAddr[n-1].Value() != p.server.ID().String() {
			t.Errorf("unix forward stream %+v: want a /unix local address and a remote address ending in /p2p/<server>", st)
		}
	}
	if !found {
		t.Errorf("no stream of the unix forward in %+v", p.cm.Streams())
	}
	c.Close()
	// A regular file at the path is not replaced.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/unix" + file), Peer: p.server.ID(), Addrs: p.server.Addrs()}); err == nil {
		t.Fatal("forward replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatalf("file content %q", b)
	}
	if n, _, err := p.cm.CloseTunnels(tunnel.Filter{ListenAddress: in.ListenAddress}); err != nil || n != 1 {
		t.Fatalf("close = %d, %v", n, err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Error("socket file left after close")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries after close, want only the regular file", len(ents))
	}
}

// echoOnce sends one byte through a forward and reports whether it came
// back; a refused connection is reset or closed without data. The
// connection is nil when the reset came before connect returned.
func echoOnce(t *testing.T, listenAddr string) (*net.TCPConn, bool) {
	t.Helper()
	addr := strings.TrimPrefix(strings.Replace(listenAddr, "/tcp/", ":", 1), "/ip4/")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil, false // a forward that refuses a client resets it at once
	}
	if err != nil {
		t.Fatalf("dial %s: %v", listenAddr, err)
	}
	c := nc.(*net.TCPConn)
	if _, err := c.Write([]byte("x")); err != nil {
		return c, false
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("no answer and no reset within 10s")
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, err == nil && b[0] == 'x'
}

func closeConn(c *net.TCPConn) {
	if c != nil {
		c.Close()
	}
}

func refusedBy(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != "warren_tunnel_refused_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// A listener serves at most MaxConns streams at once: the extra are reset
// and counted; once some close, new ones are served again.
func TestListenConnCap(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	const capN, extra = 4, 3
	target, accepted := e.tcpServer(echo)
	reg := prometheus.NewRegistry()
	server, client := e.host(), e.host()
	sm := e.manager(server, tunnel.Options{Registerer: reg})
	cm := e.manager(client, tunnel.Options{})
	ctx := context.Background()
	// One allowed peer: it may use the whole cap.
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/cap", Target: ma.StringCast(target), MaxConns: capN, Allow: []peer.ID{client.ID()}}); err != nil {
		t.Fatal(err)
	}
	f, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/cap", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	var open []*net.TCPConn
	defer func() {
		for _, c := range open {
			closeConn(c)
		}
	}()
	for i := range capN {
		c, ok := echoOnce(t, f.ListenAddress.String())
		open = append(open, c)
		if !ok {
			t.Fatalf("connection %d of %d refused", i+1, capN)
		}
	}
	for i := range extra {
		c, ok := echoOnce(t, f.ListenAddress.String())
		closeConn(c)
		if ok {
			t.Fatalf("connection %d over the cap was served", i+1)
		}
	}
	testutil.Eventually(t, 10*time.Second, "refusals to be counted", func() bool { return sm.List()[0].LimitRefused == extra })
	if v := refusedBy(t, reg, "limit"); v != extra {
		t.Errorf("warren_tunnel_refused_total{reason=limit} = %v, want %d", v, extra)
	}
	if in := sm.List()[0]; in.MaxConns != capN || in.ActiveStreams != capN {
		t.Errorf("listener info max_conns=%d active=%d, want %d, %d", in.MaxConns, in.ActiveStreams, capN, capN)
	}
	if n := accepted.Load(); n != capN {
		t.Errorf("target accepted %d connections, want %d (refused streams never dial it)", n, capN)
	}
	// Close two; two new ones are served.
	open[0].Close()
	open[1].Close()
	open = open[2:]
	testutil.Eventually(t, 10*time.Second, "closed connections to end", func() bool { return sm.List()[0].ActiveStreams == capN-2 })
	for range 2 {
		c, ok := echoOnce(t, f.ListenAddress.String())
		open = append(open, c)
		if !ok {
			t.Fatal("connection after others closed was refused")
		}
	}
}

// On a listener open to any peer, one peer gets at most half the slots:
// a second peer still gets in.
func TestListenPerPeerShare(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	reg := prometheus.NewRegistry()
	server, a, b := e.host(), e.host(), e.host()
	sm := e.manager(server, tunnel.Options{Registerer: reg, MaxConns: 4}) // node default: 4, 2 per peer
	ctx := context.Background()
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/share", Target: ma.StringCast(target)}); err != nil {
		t.Fatal(err)
	}
	fwd := func(h interface{ ID() peer.ID }) string {
		m := e.manager(a, tunnel.Options{})
		if h.ID() == b.ID() {
			m = e.manager(b, tunnel.Options{})
		}
		in, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/share", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
		if err != nil {
			t.Fatal(err)
		}
		return in.ListenAddress.String()
	}
	fa, fb := fwd(a), fwd(b)
	var open []*net.TCPConn
	defer func() {
		for _, c := range open {
			closeConn(c)
		}
	}()
	for i := range 2 {
		c, ok := echoOnce(t, fa)
		open = append(open, c)
		if !ok {
			t.Fatalf("peer A connection %d refused", i+1)
		}
	}
	c, ok := echoOnce(t, fa)
	closeConn(c)
	if ok {
		t.Fatal("peer A got a third of four slots")
	}
	testutil.Eventually(t, 10*time.Second, "peer_limit refusal", func() bool { return refusedBy(t, reg, "peer_limit") == 1 })
	for i := range 2 {
		c, ok := echoOnce(t, fb)
		open = append(open, c)
		if !ok {
			t.Fatalf("peer B connection %d refused although half the slots were free", i+1)
		}
	}
	if in := sm.List()[0]; in.MaxConns != 4 || in.ActiveStreams != 4 {
		t.Errorf("info max_conns=%d active=%d, want 4, 4", in.MaxConns, in.ActiveStreams)
	}
}

// A forward serves at most MaxConns local clients; the next is reset at once.
func TestForwardClientCap(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	f, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: p.server.ID(), Addrs: p.server.Addrs(), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	var open []*net.TCPConn
	defer func() {
		for _, c := range open {
			closeConn(c)
		}
	}()
	for range 2 {
		c, ok := echoOnce(t, f.ListenAddress.String())
		open = append(open, c)
		if !ok {
			t.Fatal("client under the cap refused")
		}
	}
	c, ok := echoOnce(t, f.ListenAddress.String())
	closeConn(c)
	if ok {
		t.Fatal("third client of a max_conns=2 forward was served")
	}
	in, _ := p.cm.Info(f.ID)
	if in.LimitRefused != 1 || in.MaxConns != 2 {
		t.Fatalf("forward info refused_limit=%d max_conns=%d, want 1, 2", in.LimitRefused, in.MaxConns)
	}
}

// The resource manager's tunnel service applies to tunnel streams: with a
// per-peer service limit of one inbound stream, a second is refused.
func TestStreamsJoinTunnelService(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	cfg := rcmgr.PartialLimitConfig{
		ServicePeer: map[string]rcmgr.ResourceLimits{tunnel.ServiceName: {StreamsInbound: 1, Streams: 1}},
	}
	server := e.hostWithLimits(cfg.Build(rcmgr.InfiniteLimits))
	client := e.host()
	reg := prometheus.NewRegistry()
	sm := e.manager(server, tunnel.Options{Registerer: reg})
	cm := e.manager(client, tunnel.Options{})
	ctx := context.Background()
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/svc", Target: ma.StringCast(target)}); err != nil {
		t.Fatal(err)
	}
	f, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/svc", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	c1, ok := echoOnce(t, f.ListenAddress.String())
	defer closeConn(c1)
	if !ok {
		t.Fatal("first stream refused")
	}
	c2, ok := echoOnce(t, f.ListenAddress.String())
	closeConn(c2)
	if ok {
		t.Fatal("second stream served over the service's per-peer limit")
	}
	testutil.Eventually(t, 10*time.Second, "service refusal", func() bool { return refusedBy(t, reg, "service") == 1 })
}

// lockedBuf collects log output from several goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A peer opening refused streams in a loop gets one WARN per window, not
// one per stream.
func TestRefusedStreamWarningsRateLimited(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	var logs lockedBuf
	server, denied := e.host(), e.host()
	sm := e.manager(server, tunnel.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/deny", Target: ma.StringCast("/ip4/127.0.0.1/tcp/9"), Allow: []peer.ID{server.ID()}}); err != nil {
		t.Fatal(err)
	}
	connectHosts(t, denied, server)
	const n = 20
	for range n {
		s, err := denied.NewStream(ctx, server.ID(), "/x/deny")
		if err != nil {
			continue
		}
		_, _ = s.Write([]byte("x"))
		_, _ = s.Read(make([]byte, 1))
		_ = s.Reset()
	}
	testutil.Eventually(t, 10*time.Second, "refusals to be counted", func() bool { return sm.List()[0].Refused == n })
	if got := strings.Count(logs.String(), "not in the allow list"); got != 1 {
		t.Fatalf("%d warnings for %d refused streams, want 1 per window:\n%s", got, n, logs.String())
	}
}

// holdServer accepts TCP connections and never answers: a libp2p dial to it
// hangs until its context ends. It returns the address.
func (e *env) holdServer() string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	e.onClose(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// A flood of client source addresses into a UDP forward whose peer never
// answers keeps the associations, goroutines and queued bytes bounded.
func TestUDPForwardSourceFlood(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	hold := e.holdServer()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	ghost, _ := peer.IDFromPrivateKey(priv)
	hostPort := strings.Split(hold, ":")
	// Dials to loopback time out after 5 s by default; keep them pending.
	client := e.host(libp2p.SwarmOpts(swarm.WithDialTimeoutLocal(time.Minute)))
	reg := prometheus.NewRegistry()
	cm := e.manager(client, tunnel.Options{DialTimeout: time.Minute, Registerer: reg})
	f, err := cm.Forward(context.Background(), tunnel.ForwardSpec{
		Protocol: "/x/flood", ListenAddr: ma.StringCast("/ip4/127.0.0.1/udp/0"),
		Peer: ghost, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + hostPort[1])},
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := udpDial(t, f.ListenAddress.String()).RemoteAddr().(*net.UDPAddr)
	info := func() tunnel.Info { in, _ := cm.Info(f.ID); return in }

	// Queued bytes per association: 60 kB datagrams from one source; the
	// first four fit in 256 KiB, the rest are dropped while the stream
	// cannot open.
	one, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	big := make([]byte, 60000)
	for i := range 15 {
		if _, err := one.WriteToUDP(big, dst); err != nil {
			t.Fatal(err)
		}
		queued, dropped := int64(min(i+1, 4)*60002), uint64(max(0, i+1-4))
		testutil.Eventually(t, 10*time.Second, "datagram to be queued or dropped", func() bool {
			in := info()
			return in.UDPQueuedBytes == queued && in.DroppedDatagrams == dropped
		})
	}

	before := runtime.NumGoroutine()
	// 2,000 source ports: the first 1,000 from 127.0.0.1 (which may hold
	// half the associations), then from 127.0.0.2 and .3 until the
	// forward's cap.
	const ports = 2000
	hello := func(ip net.IP) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.WriteToUDP([]byte("hello"), dst)
		c.Close()
	}
	for i := range ports {
		ip := net.IPv4(127, 0, 0, 1)
		if i >= ports/2 {
			ip = net.IPv4(127, 0, 0, byte(2+i%2))
		}
		hello(ip)
	}
	// The kernel drops datagrams when the forward's socket buffer
	// overflows (a loaded, race-built forward reads slower than this loop
	// sends): until both caps are reached, send more from new ports of
	// each address.
	more := 0
	testutil.Eventually(t, 20*time.Second, "both association caps to be reached", func() bool {
		if info().UDPSessions == 256 && refusedBy(t, reg, "udp_source") > 0 && refusedBy(t, reg, "udp_sessions") > 0 {
			return true
		}
		for range 60 {
			hello(net.IPv4(127, 0, 0, byte(1+more%3)))
			more++
		}
		return false
	})
	t.Logf("%d more datagrams after the first %d", more, ports)
	in := info()
	if in.UDPSessions > 256 {
		t.Fatalf("%d UDP associations, want at most 256", in.UDPSessions)
	}
	if g := runtime.NumGoroutine() - before; g > 256+64 {
		t.Fatalf("%d more goroutines after the flood, want at most %d", g, 256+64)
	}
	t.Logf("sessions %d, refused %d, dropped %d, goroutines +%d", in.UDPSessions, in.LimitRefused, in.DroppedDatagrams, runtime.NumGoroutine()-before)
}

// A misspelt key fails that tunnel closed: listed with an error naming the
// key, not serving; the other tunnel restores; the file is not rewritten.
func TestStateUnknownKeyFailsClosed(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tunnels.json")
	allowed := e.host().ID()
	m1, err := tunnel.NewManager(context.Background(), e.host(), tunnel.Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/a", Target: ma.StringCast("/ip4/127.0.0.1/tcp/22"), Allow: []peer.ID{allowed}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/b", Target: ma.StringCast("/ip4/127.0.0.1/tcp/22")}); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(orig, []byte(`"allow"`)) != 1 {
		t.Fatalf("state file:\n%s", orig)
	}
	bad := bytes.Replace(orig, []byte(`"allow"`), []byte(`"alow"`), 1)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	h := e.host()
	m2 := e.manager(h, tunnel.Options{StatePath: path})
	got := m2.Restore(ctx)
	if len(got) != 2 {
		t.Fatalf("Restore = %+v, want 2 tunnels", got)
	}
	if got[0].Protocol != "/x/a" || !strings.Contains(got[0].Error, `"alow"`) {
		t.Errorf("misspelt tunnel restored as %+v, want an error naming \"alow\"", got[0])
	}
	if got[1].Protocol != "/x/b" || got[1].Error != "" {
		t.Errorf("other tunnel restored as %+v, want running", got[1])
	}
	protos := h.Mux().Protocols()
	if slices.Contains(protos, protocol.ID("/x/a")) || !slices.Contains(protos, protocol.ID("/x/b")) {
		t.Errorf("host serves %v: want /x/b and not /x/a", protos)
	}
	if l := m2.List(); len(l) != 2 || l[0].Error == "" {
		t.Errorf("List = %+v, want the failed tunnel listed with its error", l)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, bad) {
		t.Errorf("state file changed by restore:\n--- before\n%s\n--- after\n%s", bad, now)
	}
}

func TestStateFileRefusedForms(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	if err := os.WriteFile(real, []byte(`{"version":1,"tunnels":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "tunnels.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	h := e.host()
	if _, err := tunnel.NewManager(context.Background(), h, tunnel.Options{StatePath: link}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("state file behind a symlink: %v, want refused", err)
	}
	// A FIFO planted as the state file is refused at once, not waited on.
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tunnel.NewManager(context.Background(), h, tunnel.Options{StatePath: fifo})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("state file that is a FIFO: %v, want refused", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("NewManager hangs on a FIFO state file")
	}
	for name, doc := range map[string]string{
		"trailing":    `{"version":1,"tunnels":[]} {"version":1}`,
		"unknown top": `{"version":1,"tunnels":[],"tunels":[]}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := tunnel.NewManager(context.Background(), h, tunnel.Options{StatePath: p}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	// The plain file loads.
	m, err := tunnel.NewManager(context.Background(), h, tunnel.Options{StatePath: real})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
}
