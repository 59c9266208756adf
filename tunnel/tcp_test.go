package tunnel_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	ma "github.com/multiformats/go-multiaddr"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"go.uber.org/goleak"

	"github.com/warren-p2p/warren/tunnel"

	"github.com/warren-p2p/warren/internal/testutil"
)

// sendAndCheckEcho writes size random bytes through c while reading the
// echo concurrently, and compares sha256 of both directions.
func sendAndCheckEcho(c *net.TCPConn, size int) error {
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	want := sha256.Sum256(data)
	var g errgroup.Group
	g.Go(func() error {
		if _, err := c.Write(data); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return c.CloseWrite()
	})
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n != int64(size) {
		return fmt.Errorf("echo returned %d bytes, want %d", n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		return fmt.Errorf("echo sha256 mismatch")
	}
	return nil
}

func TestForwardListenLargeTransfer(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	reg := prometheus.NewRegistry()
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{Registerer: reg})
	if strings.HasSuffix(p.forward.ListenAddress.String(), "/tcp/0") {
		t.Fatalf("forward ListenAddress %q is not the real bound address", p.forward.ListenAddress)
	}
	const size = 32 << 20
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	start := time.Now()
	if err := sendAndCheckEcho(c, size); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("%d MiB each way in %v (%.0f MiB/s per direction, race=%v)", size>>20, d, float64(size>>20)/d.Seconds(), raceEnabled)
	// Counters: the client side sent and received size bytes.
	testutil.Eventually(t, 10*time.Second, "byte counters", func() bool {
		in := p.cm.List()[0]
		return in.BytesOut == size && in.BytesIn == size && in.Opened == 1
	})
	srv := p.sm.List()[0]
	if srv.BytesIn != size || srv.BytesOut != size {
		t.Errorf("listen counters in=%d out=%d, want %d each", srv.BytesIn, srv.BytesOut, size)
	}
	// Both managers share the registry: each direction is counted once per side.
	for _, name := range []string{"warren_tunnel_bytes_in_total", "warren_tunnel_bytes_out_total"} {
		if v := counterValue(t, reg, name); v != 2*size {
			t.Errorf("%s = %v, want %d", name, v, 2*size)
		}
	}
	if v := counterValue(t, reg, "warren_tunnel_streams_opened_total"); v != 2 {
		t.Errorf("streams_opened_total = %v, want 2", v)
	}
}

func TestConcurrentConnections(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, accepted := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	const n = 100
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			c := dial(t, p.forward.ListenAddress.String())
			defer c.Close()
			if err := sendAndCheckEcho(c, 64<<10+i); err != nil {
				return fmt.Errorf("conn %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := accepted.Load(); got != n {
		t.Errorf("target accepted %d connections, want %d", got, n)
	}
	testutil.Eventually(t, 10*time.Second, "streams to end", func() bool {
		return len(p.cm.Streams()) == 0 && len(p.sm.Streams()) == 0
	})
	if in := p.sm.List()[0]; in.Opened != n || in.ActiveStreams != 0 {
		t.Errorf("listen Opened=%d ActiveStreams=%d, want %d and 0", in.Opened, in.ActiveStreams, n)
	}
}

// The client shuts down its write side; the server reads to EOF and only
// then replies. kubo#7747: the reply must still arrive.
func TestHalfCloseClientFirst(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(func(c *net.TCPConn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // reply well after the client's FIN
		_, _ = fmt.Fprintf(c, "sha256:%x\n", h.Sum(nil))
		_ = c.CloseWrite()
	})
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	data := bytes.Repeat([]byte("request "), 100_000)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read reply after half-close: %v", err)
	}
	want := fmt.Sprintf("sha256:%x\n", sha256.Sum256(data))
	if string(reply) != want {
		t.Fatalf("reply %q, want %q", reply, want)
	}
}

// The server speaks first and half-closes; the client reads to EOF and then
// sends its answer, which the server must receive.
func TestHalfCloseServerFirst(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	got := make(chan string, 1)
	target, _ := e.tcpServer(func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "hello\n")
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	greeting, err := io.ReadAll(c)
	if err != nil || string(greeting) != "hello\n" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := io.WriteString(c, "answer"); err != nil {
		t.Fatalf("write after server half-close: %v", err)
	}
	_ = c.CloseWrite()
	select {
	case s := <-got:
		if s != "answer" {
			t.Fatalf("server got %q, want %q", s, "answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server never got the answer")
	}
}

func TestAllowList(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	target, accepted := e.tcpServer(echo)
	server := e.host()
	allowed := e.host()
	denied := e.host()
	reg := prometheus.NewRegistry()
	sm := e.manager(server, tunnel.Options{Registerer: reg})
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/allow", Target: ma.StringCast(target), Allow: []peer.ID{allowed.ID()}}); err != nil {
		t.Fatal(err)
	}
	am := e.manager(allowed, tunnel.Options{})
	dm := e.manager(denied, tunnel.Options{})
	fwd := func(m *tunnel.Manager) *tunnel.Tunnel {
		in, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/allow", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	af, df := fwd(am), fwd(dm)

	port := tcpPort(df.ListenAddress)
	if nc, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil { // else reset before connect returned
		_, _ = nc.Write([]byte("secret"))
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(nc)
		nc.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("denied peer's client conn not closed")
		}
		if len(b) > 0 {
			t.Fatalf("denied peer got data %q", b)
		}
	}
	testutil.Eventually(t, 10*time.Second, "refusal to be counted", func() bool { return sm.List()[0].Refused == 1 })
	if n := accepted.Load(); n != 0 {
		t.Fatalf("target saw %d connections from a denied peer, want 0", n)
	}
	if v := counterValue(t, reg, "warren_tunnel_streams_refused_total"); v != 1 {
		t.Errorf("refused metric = %v, want 1", v)
	}

	c := dial(t, af.ListenAddress.String())
	defer c.Close()
	if err := sendAndCheckEcho(c, 1000); err != nil {
		t.Fatalf("allowed peer: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("target saw %d connections, want 1", n)
	}
	if got := sm.List()[0].Allow; len(got) != 1 || got[0] != allowed.ID() {
		t.Errorf("Info.Allow = %v", got)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestReportPeerID(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	lines := make(chan string, 1)
	target, _ := e.tcpServer(func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		line, _ := r.ReadString('\n')
		rest, _ := io.ReadAll(r)
		lines <- line + "|" + string(rest)
	})
	p := e.pair(target, tunnel.ListenSpec{ReportPeerID: true}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = io.WriteString(c, "payload")
	_ = c.CloseWrite()
	want := p.client.ID().String() + "\n|payload"
	select {
	case got := <-lines:
		if got != want {
			t.Fatalf("target got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("target got nothing")
	}
}

// A raw stream, as kubo's "p2p forward" opens it, reaches the target byte
// for byte: no framing or preamble.
func TestRawStreamInterop(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	server, client := e.host(), e.host()
	sm := e.manager(server, tunnel.Options{})
	if _, err := sm.Listen(context.Background(), tunnel.ListenSpec{Protocol: "/x/kubo", Target: ma.StringCast(target)}); err != nil {
		t.Fatal(err)
	}
	connectHosts(t, client, server)
	s, err := client.NewStream(context.Background(), server.ID(), protocol.ID("/x/kubo"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write([]byte("exact bytes\x00\xff")); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "exact bytes\x00\xff" {
		t.Fatalf("got %q, %v", got, err)
	}

	// And the reverse: a forward into a plain stream handler (kubo's listen).
	client.SetStreamHandler("/x/plain", func(s network.Stream) {
		b, _ := io.ReadAll(s)
		_, _ = s.Write(append([]byte("re:"), b...))
		_ = s.Close()
	})
	fwd, err := sm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: "/x/plain", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: client.ID()})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, fwd.ListenAddress.String())
	defer c.Close()
	_, _ = io.WriteString(c, "ping")
	_ = c.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "re:ping" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestUnixTarget(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		_, _ = c.Write(bytes.ToUpper(b))
	})
	e.onClose(func() { ln.Close(); wg.Wait() })
	p := e.pair("/unix"+path, tunnel.ListenSpec{}, tunnel.Options{})
	if p.listen.Transport != tunnel.TransportUnix {
		t.Errorf("transport %q", p.listen.Transport)
	}
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = io.WriteString(c, "unix")
	_ = c.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "UNIX" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestStreamsAndCloseStream(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c1 := dial(t, p.forward.ListenAddress.String())
	defer c1.Close()
	c2 := dial(t, p.forward.ListenAddress.String())
	defer c2.Close()
	for _, c := range []*net.TCPConn{c1, c2} {
		_, _ = c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// A stream counts a byte once it is written on, which may be just after
	// the client has read it: wait for the counts too.
	testutil.Eventually(t, 10*time.Second, "two streams each side, one byte each way", func() bool {
		if len(p.cm.Streams()) != 2 || len(p.sm.Streams()) != 2 {
			return false
		}
		for _, s := range p.cm.Streams() {
			if s.BytesIn != 1 || s.BytesOut != 1 {
				return false
			}
		}
		return true
	})
	ss := p.cm.Streams()
	for _, s := range ss {
		if s.Protocol != protocol.ID(p.proto) || s.Peer != p.server.ID() || s.Kind != tunnel.KindForward ||
			s.TunnelID != p.forward.ID || s.BytesOut != 1 || s.BytesIn != 1 || s.Opened.IsZero() ||
			!strings.HasPrefix(s.LocalAddr.String(), "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(s.RemoteAddr.String(), "/p2p/"+p.server.ID().String()) {
			t.Errorf("unexpected stream info %+v", s)
		}
	}
	if in := p.cm.List()[0]; in.ActiveStreams != 2 {
		t.Errorf("ActiveStreams = %d, want 2", in.ActiveStreams)
	}
	if err := p.cm.CloseStream(999999); err == nil || !strings.Contains(err.Error(), "999999") {
		t.Errorf("CloseStream(unknown) = %v, want an error naming the id", err)
	}
	// Find c1's stream by its client address.
	var id1 uint64
	for _, s := range ss {
		if s.LocalAddr.Equal(ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(c1.LocalAddr().(*net.TCPAddr).Port))) {
			id1 = s.ID
		}
	}
	if id1 == 0 {
		t.Fatalf("no stream has c1's address %v as LocalAddr: %+v", c1.LocalAddr(), ss)
	}
	if err := p.cm.CloseStream(id1); err != nil {
		t.Fatal(err)
	}
	_ = c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("client conn still open after CloseStream")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client conn not closed within 5s of CloseStream")
	}
	// c2 is unaffected.
	_, _ = c2.Write([]byte("y"))
	if _, err := io.ReadFull(c2, make([]byte, 1)); err != nil {
		t.Fatalf("other stream broken: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "one stream each side", func() bool { return len(p.cm.Streams()) == 1 && len(p.sm.Streams()) == 1 })
	if n := p.sm.CloseAllStreams(); n != 1 {
		t.Errorf("CloseAllStreams = %d, want 1", n)
	}
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("client conn still open after CloseAllStreams on the remote side")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client conn not closed within 5s of remote CloseAllStreams")
	}
}

func TestRemoteHostCloseClosesClient(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.server.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client conn still open 5s after the remote host closed")
	}
	if err == nil {
		t.Fatal("client read data after the remote host closed")
	}
	t.Logf("client conn closed %v after remote host close (%v)", time.Since(start), err)
	testutil.Eventually(t, 10*time.Second, "client streams to end", func() bool { return len(p.cm.Streams()) == 0 })
}

func TestCloseManagerResetsConnections(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = c.Write([]byte("x"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := p.cm.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("client conn open after Manager.Close")
	}
	if _, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: "/x/a", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: p.server.ID()}); !errors.Is(err, tunnel.ErrClosed) {
		t.Errorf("Forward after Close = %v, want ErrClosed", err)
	}
	// The listener is gone.
	m := p.forward.ListenAddress
	parts := strings.Split(m.String(), "/")
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+parts[len(parts)-1], time.Second); err == nil {
		t.Error("forward listener still accepting after Manager.Close")
	}
	// The remote side's stream was reset as well.
	testutil.Eventually(t, 10*time.Second, "server streams to end", func() bool { return len(p.sm.Streams()) == 0 })
}

// A reset from the target resets the client promptly (no clean EOF).
func TestTargetResetPropagates(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(func(c *net.TCPConn) {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		_, _ = c.Write(b)
		if _, err := io.ReadFull(c, b); err != nil { // the client got the echo
			return
		}
		_ = c.SetLinger(0)
		_ = c.Close() // RST
	})
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{})
	c := dial(t, p.forward.ListenAddress.String())
	defer c.Close()
	_, _ = c.Write([]byte("x"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("y"))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client not reset within 5s of the target's reset")
	}
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("client read after target reset = %v, want a reset error", err)
	}
}

// Connections to an unreachable peer or an unserved protocol are closed
// promptly and counted as failed.
func TestForwardFailures(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	client, server := e.host(), e.host()
	stranger := e.host()
	strangerID := stranger.ID()
	_ = stranger.Close() // a valid peer ID nobody can reach
	cm := e.manager(client, tunnel.Options{DialTimeout: time.Second})
	unreachable, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/none", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: strangerID})
	if err != nil {
		t.Fatal(err)
	}
	unserved, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/none", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*tunnel.Tunnel{unreachable, unserved} {
		port := tcpPort(in.ListenAddress)
		nc, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			continue // reset before connect returned: closed promptly indeed
		}
		c := nc.(*net.TCPConn)
		_, _ = c.Write([]byte("hello"))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: client conn not closed", in.TargetAddress)
		}
		if len(b) > 0 {
			t.Fatalf("%s: client got %q", in.TargetAddress, b)
		}
	}
	testutil.Eventually(t, 10*time.Second, "failures counted", func() bool {
		l := cm.List()
		return l[0].Failed == 1 && l[1].Failed == 1 && len(cm.Streams()) == 0
	})
}

// Closing a forward while one of its clients waits for the peer to answer a
// dial ends that client at once, and leaves no goroutine behind, although
// the manager (and its dial timeout) carries on.
func TestCloseForwardWhileDialing(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	client := e.host()
	cm := e.manager(client, tunnel.Options{DialTimeout: 30 * time.Second})
	// A peer address that accepts TCP and then never says a word.
	hole, accepted := e.tcpServer(func(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) })
	silent := e.host()
	silentID := silent.ID()
	_ = silent.Close()

	before := goleak.IgnoreCurrent()
	in, err := cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: "/x/hang", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: silentID, Addrs: []ma.Multiaddr{ma.StringCast(hole)}})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, in.ListenAddress.String())
	defer c.Close()
	testutil.Eventually(t, 10*time.Second, "the dial to reach the silent peer", func() bool { return accepted.Load() > 0 })

	start := time.Now()
	if n, _, err := cm.CloseTunnels(tunnel.Filter{All: true}); err != nil || n != 1 {
		t.Fatalf("CloseTunnels: %d tunnels, %v", n, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("client read data from a closed forward")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client still connected 5 s after its forward closed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("client ended %v after close, want < 1 s", d)
	}
	if err := goleak.Find(before); err != nil {
		t.Errorf("goroutines left after the forward closed: %v", err)
	}
}

// A unix-socket forward binds again over the socket file a killed daemon
// left behind, but never takes over a socket that is still served.
func TestForwardUnixReplacesStaleSocket(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	dir, err := os.MkdirTemp("", "wt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	stale, live := filepath.Join(dir, "stale.sock"), filepath.Join(dir, "live.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close() // the file stays, nobody listens: what SIGKILL leaves
	served, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer served.Close()

	srvAddr, _ := e.tcpServer(echo)
	p := e.pair(srvAddr, tunnel.ListenSpec{}, tunnel.Options{})
	in, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/unix" + stale), Peer: p.server.ID(), Addrs: p.server.Addrs()})
	if err != nil {
		t.Fatalf("forward on a stale socket file: %v", err)
	}
	c, err := net.DialTimeout("unix", stale, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", in.ListenAddress, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hi" {
		t.Fatalf("echo through the forward: %q %v", got, err)
	}

	if _, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/unix" + live), Peer: p.server.ID(), Addrs: p.server.Addrs()}); err == nil {
		t.Fatal("forward took over a socket another process serves")
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Fatalf("the served socket was removed: %v", err)
	} else {
		c.Close()
	}
}

// Metrics are per tunnel: two forwards of one protocol have separate series
// (labelled with the id ls shows), and a closed tunnel's series go away.
func TestMetricsPerTunnel(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	target, _ := e.tcpServer(echo)
	reg := prometheus.NewRegistry()
	p := e.pair(target, tunnel.ListenSpec{}, tunnel.Options{Registerer: reg})
	second, err := p.cm.Forward(context.Background(), tunnel.ForwardSpec{Protocol: protocol.ID(p.proto), ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: p.server.ID(), Addrs: p.server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.forward.ListenAddress.String())
	if err := sendAndCheckEcho(c, 1000); err != nil {
		t.Fatal(err)
	}
	c.Close()
	series := func(id uint64) (bytesOut float64, found bool) {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "warren_tunnel_bytes_out_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["tunnel"] == strconv.FormatUint(id, 10) && labels["kind"] == string(tunnel.KindForward) {
					return m.GetCounter().GetValue(), true
				}
			}
		}
		return 0, false
	}
	testutil.Eventually(t, 10*time.Second, "the first forward's bytes", func() bool { v, _ := series(p.forward.ID); return v == 1000 })
	if v, ok := series(second.ID); !ok || v != 0 {
		t.Fatalf("second forward's series = %v (present %v), want its own, at 0", v, ok)
	}
	if n, _, err := p.cm.CloseTunnels(tunnel.Filter{ID: p.forward.ID}); err != nil || n != 1 {
		t.Fatalf("close: %d %v", n, err)
	}
	if _, ok := series(p.forward.ID); ok {
		t.Fatal("a closed tunnel's series is still exported")
	}
	if _, ok := series(second.ID); !ok {
		t.Fatal("closing one tunnel removed another's series")
	}
}
