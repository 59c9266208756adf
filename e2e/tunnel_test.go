package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/warren-p2p/warren/client"
	"github.com/warren-p2p/warren/config"
	"github.com/warren-p2p/warren/tunnel"
)

// Modes of the test target server, chosen by the first byte a client sends.
const (
	modeEcho  = 'e' // echo everything, half-close after the client's EOF
	modeReply = 'h' // read to EOF, then reply sha256(input) + replyBytes of data
	modeHold  = 'w' // answer "ok\n", then hold the connection until EOF
)

// replyBytes is what modeReply sends after the hash, after the client's EOF.
const replyBytes = 1 << 20

// target is a local TCP service behind a listen tunnel.
type target struct {
	ln       net.Listener
	maddr    string
	accepted atomic.Int64
	lines    chan string // first line of each connection (report-peer-id mode)
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// startTarget serves the mode protocol above; with reportPeerID it first
// reads the "<peer-id>\n" line warren writes and records it.
func startTarget(t *testing.T, reportPeerID bool) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s := &target{ln: ln, maddr: m.String(), lines: make(chan string, 16), conns: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				s.serve(c.(*net.TCPConn), reportPeerID)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *target) serve(c *net.TCPConn, reportPeerID bool) {
	r := bufio.NewReaderSize(c, 64<<10)
	if reportPeerID {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		select {
		case s.lines <- line:
		default:
		}
	}
	mode, err := r.ReadByte()
	if err != nil {
		return
	}
	switch mode {
	case modeEcho:
		if _, err := io.Copy(c, r); err == nil {
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, r)
		}
	case modeReply:
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return
		}
		if _, err := c.Write(h.Sum(nil)); err != nil {
			return
		}
		if _, err := io.Copy(c, io.LimitReader(newRand(7), replyBytes)); err != nil {
			return
		}
		_ = c.CloseWrite()
	case modeHold:
		if _, err := io.WriteString(c, "ok\n"); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, r)
	}
}

// newRand is a fast deterministic byte source.
func newRand(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// tunnelPair starts two daemons, b connected to a.
func tunnelPair(t *testing.T) (a, b *daemon) {
	t.Helper()
	a, b = startDaemon(t, newRepo(t)), startDaemon(t, newRepo(t))
	ok(t, b.Repo, "connect", a.Addr())
	return a, b
}

// tunnelListen runs `tunnel listen` on d and returns the new tunnel.
func tunnelListen(t *testing.T, d *daemon, args ...string) client.TunnelInfo {
	t.Helper()
	var info client.TunnelInfo
	jsonOut(t, d.Repo, &info, append([]string{"tunnel", "listen", "--json"}, args...)...)
	return info
}

// tunnelForward runs `tunnel forward` on d and returns the new tunnel and
// the host:port it is bound to.
func tunnelForward(t *testing.T, d *daemon, args ...string) (client.TunnelInfo, string) {
	t.Helper()
	var info client.TunnelInfo
	jsonOut(t, d.Repo, &info, append([]string{"tunnel", "forward", "--json"}, args...)...)
	return info, hostPort(t, info.ListenAddress)
}

func hostPort(t *testing.T, maddr string) string {
	t.Helper()
	m, err := ma.NewMultiaddr(maddr)
	if err != nil {
		t.Fatalf("bound address %q: %v", maddr, err)
	}
	a, err := manet.ToNetAddr(m)
	if err != nil {
		t.Fatalf("bound address %q: %v", maddr, err)
	}
	if strings.HasSuffix(a.String(), ":0") {
		t.Fatalf("bound address %s still has port 0", maddr)
	}
	return a.String()
}

func tunnels(t *testing.T, d *daemon, args ...string) []client.TunnelInfo {
	t.Helper()
	var ts []client.TunnelInfo
	jsonOut(t, d.Repo, &ts, append([]string{"tunnel", "ls", "--json"}, args...)...)
	return ts
}

func streams(t *testing.T, d *daemon, args ...string) []client.TunnelStreamInfo {
	t.Helper()
	var ss []client.TunnelStreamInfo
	jsonOut(t, d.Repo, &ss, append([]string{"tunnel", "streams", "--json"}, args...)...)
	return ss
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial tunnel %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	return c.(*net.TCPConn)
}

// request sends mode 'h' with payload, half-closes and checks the reply
// that the server only sends after it read EOF.
func request(c *net.TCPConn, payload []byte) error {
	if _, err := c.Write(append([]byte{modeReply}, payload...)); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	reply, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read reply after half-close (got %d bytes): %w", len(reply), err)
	}
	want := sha256.Sum256(payload)
	if len(reply) != 32+replyBytes {
		return fmt.Errorf("reply is %d bytes, want %d", len(reply), 32+replyBytes)
	}
	if !bytes.Equal(reply[:32], want[:]) {
		return errors.New("server saw different bytes than the client sent")
	}
	wantTail, _ := io.ReadAll(io.LimitReader(newRand(7), replyBytes))
	if !bytes.Equal(reply[32:], wantTail) {
		return errors.New("reply bytes corrupted")
	}
	return nil
}

// hold opens a connection in modeHold and waits for the target's "ok".
func hold(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c := dial(t, addr)
	if _, err := c.Write([]byte{modeHold}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ok\n" {
		t.Fatalf("held connection via %s: %q %v", addr, line, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// dialEndsWithin dials a forward that must end the connection, writes
// first and checks the forward ends it within d. The forward opens its
// stream as it accepts, so its reset may come back before a loaded dialer
// has returned from connect: that counts as ended too.
func dialEndsWithin(addr string, first []byte, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	_, _ = c.Write(first)
	return closedWithin(c, d)
}

// closedWithin checks that the peer of c ends the connection within d.
func closedWithin(c net.Conn, d time.Duration) error {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	_, err := c.Read(make([]byte, 1))
	if ne, isNet := err.(net.Error); isNet && ne.Timeout() {
		return fmt.Errorf("connection still open %v later", d)
	}
	if err == nil {
		return errors.New("connection delivered data, expected it to end")
	}
	return nil
}

func TestTunnelBulkConcurrentAndHalfClose(t *testing.T) {
	a, b := tunnelPair(t)
	srv := startTarget(t, false)
	info := tunnelListen(t, a, "/x/bulk", srv.maddr)
	if info.Kind != client.TunnelKindListen || info.TargetAddress != srv.maddr {
		t.Fatalf("listen answered %+v", info)
	}
	// The human output prints the real bound address, not port 0.
	out := ok(t, b.Repo, "tunnel", "forward", "/x/bulk", "/ip4/127.0.0.1/tcp/0", a.Addr())
	var bound string
	for f := range strings.FieldsSeq(out) {
		if strings.HasPrefix(f, "/ip4/127.0.0.1/tcp/") {
			bound = f
		}
	}
	if bound == "" || strings.HasSuffix(bound, "/tcp/0") || !strings.Contains(out, "/x/bulk") {
		t.Fatalf("forward output lacks the bound address: %q", out)
	}
	addr := hostPort(t, bound)

	// 256 MiB each way through an echo, checked by sha256.
	size := int64(256 << 20)
	c := dial(t, addr)
	start := time.Now()
	sent, got := sha256.New(), sha256.New()
	var n int64
	readDone := make(chan error, 1)
	go func() {
		var err error
		n, err = io.Copy(got, c)
		readDone <- err
	}()
	if _, err := c.Write([]byte{modeEcho}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.MultiWriter(c, sent), io.LimitReader(newRand(1), size)); err != nil {
		t.Fatalf("send 256 MiB: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatalf("receive echo: %v after %d bytes", err, n)
	}
	if n != size || !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatalf("echo: got %d bytes, want %d; sha256 match %v", n, size, bytes.Equal(sent.Sum(nil), got.Sum(nil)))
	}
	el := time.Since(start)
	t.Logf("256 MiB each way in %v (%.1f MiB/s each way, race=%v)", el.Round(time.Millisecond), 256/el.Seconds(), raceEnabled)

	// A half-closing client gets its whole reply (kubo#7747).
	if err := request(dial(t, addr), []byte("question")); err != nil {
		t.Fatalf("half-close: %v", err)
	}

	// 100 concurrent connections, all open at once.
	const conns = 100
	cs := make([]*net.TCPConn, conns)
	for i := range cs {
		cs[i] = hold(t, addr) // each one reached the target before the next opens
	}
	eventually(t, 10*time.Second, func() error {
		if n := len(streams(t, b, "--protocol", "/x/bulk")); n != conns {
			return fmt.Errorf("b lists %d active streams, want %d", n, conns)
		}
		return nil
	})
	ts := tunnels(t, a)
	if len(ts) != 1 || ts[0].ActiveStreams != conns || ts[0].BytesIn < uint64(size) || ts[0].BytesOut < uint64(size) {
		t.Fatalf("a's ls after bulk: %+v", ts)
	}
	for _, c := range cs {
		c.Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			payload, _ := io.ReadAll(io.LimitReader(newRand(uint64(100+i)), 64<<10))
			if err := request(c.(*net.TCPConn), payload); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.accepted.Load(); got != 2+2*conns {
		t.Errorf("target accepted %d connections, want %d", got, 2+2*conns)
	}
	a.Stop()
	b.Stop()
}

func TestTunnelAllowListAndReportPeerID(t *testing.T) {
	a, b := tunnelPair(t)
	c := startDaemon(t, newRepo(t))
	ok(t, c.Repo, "connect", a.Addr())
	srv := startTarget(t, true)
	info := tunnelListen(t, a, "/x/only-b", srv.maddr, "--allow", b.ID, "--report-peer-id")
	if len(info.Allow) != 1 || info.Allow[0] != b.ID || !info.ReportPeerID {
		t.Fatalf("listen answered %+v", info)
	}
	if out := ok(t, a.Repo, "tunnel", "ls", "--wide"); !strings.Contains(out, b.ID) || !strings.Contains(out, "/x/only-b") {
		t.Fatalf("ls does not show the allow list:\n%s", out)
	}
	_, viaB := tunnelForward(t, b, "/x/only-b", "/ip4/127.0.0.1/tcp/0", a.ID)
	_, viaC := tunnelForward(t, c, "/x/only-b", "/ip4/127.0.0.1/tcp/0", a.ID)

	// The refused peer's connection ends and the target never sees it.
	if err := dialEndsWithin(viaC, []byte{modeEcho, 'x'}, 5*time.Second); err != nil {
		t.Fatalf("connection from a peer not allowed: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if ts := tunnels(t, a); ts[0].Refused != 1 {
			return fmt.Errorf("streams_refused = %d, want 1", ts[0].Refused)
		}
		return nil
	})
	if n := srv.accepted.Load(); n != 0 {
		t.Fatalf("target saw %d connections from a refused peer", n)
	}
	// The daemon logs the refusal after counting it.
	eventually(t, 5*time.Second, func() error {
		if !strings.Contains(a.Output(), "refused") {
			return fmt.Errorf("the refusal is not logged:\n%s", a.Output())
		}
		return nil
	})

	// The allowed peer gets through, and the target reads "<id>\n" first.
	bc := dial(t, viaB)
	if err := request(bc, []byte("hello from b")); err != nil {
		t.Fatalf("allowed peer: %v", err)
	}
	select {
	case line := <-srv.lines:
		if line != b.ID+"\n" {
			t.Fatalf("target's first line %q, want %q", line, b.ID+"\n")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target never read the peer ID line")
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("target accepted %d connections, want 1", n)
	}
	a.Stop()
	b.Stop()
	c.Stop()
}

func TestTunnelsSurviveRestartUnlessTemp(t *testing.T) {
	a, b := tunnelPair(t)
	srv := startTarget(t, false)
	tunnelListen(t, a, "/x/keep", srv.maddr)
	tunnelListen(t, a, "/x/temp", srv.maddr, "--temp")
	keep, keepAddr := tunnelForward(t, b, "/x/keep", "/ip4/127.0.0.1/tcp/0", a.ID)
	tunnelForward(t, b, "/x/temp", "/ip4/127.0.0.1/tcp/0", a.ID, "--temp")
	busy, busyAddr := tunnelForward(t, b, "/x/keep", "/ip4/127.0.0.1/tcp/0", a.ID)
	if err := request(dial(t, keepAddr), []byte("before")); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	b.Stop()

	// Someone takes the second forward's port while b is down.
	squat, err := net.Listen("tcp", busyAddr)
	if err != nil {
		t.Fatalf("take port %s: %v", busyAddr, err)
	}
	defer squat.Close()

	a = startDaemon(t, a.Repo)
	b = startDaemon(t, b.Repo)
	ok(t, b.Repo, "connect", a.Addr()) // a listens on a new port (test profile: port 0)

	ta := tunnels(t, a)
	if len(ta) != 1 || ta[0].Protocol != "/x/keep" || ta[0].Error != "" {
		t.Fatalf("a after restart: %+v (want only /x/keep, running)", ta)
	}
	tb := tunnels(t, b)
	if len(tb) != 2 {
		t.Fatalf("b after restart: %+v (want the two saved forwards)", tb)
	}
	for _, tn := range tb {
		switch tn.ListenAddress {
		case keep.ListenAddress:
			if tn.Error != "" {
				t.Errorf("forward %s not restored: %s", tn.ListenAddress, tn.Error)
			}
		case busy.ListenAddress:
			if tn.Error == "" {
				t.Errorf("forward on a taken port %s shows no error", tn.ListenAddress)
			}
		default:
			t.Errorf("unexpected tunnel after restart: %+v", tn)
		}
	}
	if out := ok(t, b.Repo, "tunnel", "ls"); !strings.Contains(out, "down:") {
		t.Errorf("ls does not show the restore error:\n%s", out)
	}
	// Traffic flows again on the same port.
	if err := request(dial(t, keepAddr), []byte("after")); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// close removes a tunnel from the repo: it stays gone after a restart.
	if out := ok(t, b.Repo, "tunnel", "close", "--listen-address", busy.ListenAddress); !strings.Contains(out, "closed 1 tunnel and 0 streams") {
		t.Fatalf("close output %q", out)
	}
	b.Stop()
	b = startDaemon(t, b.Repo)
	if tb := tunnels(t, b); len(tb) != 1 || tb[0].ListenAddress != keep.ListenAddress {
		t.Fatalf("b after closing one and restarting: %+v", tb)
	}
	a.Stop()
	b.Stop()
}

func TestTunnelKilledListenerEndsClientConnections(t *testing.T) {
	a, b := tunnelPair(t)
	c := startDaemon(t, newRepo(t))
	ok(t, b.Repo, "connect", c.Addr())
	srvA, srvC := startTarget(t, false), startTarget(t, false)
	tunnelListen(t, a, "/x/a", srvA.maddr)
	tunnelListen(t, c, "/x/c", srvC.maddr)
	_, toA := tunnelForward(t, b, "/x/a", "/ip4/127.0.0.1/tcp/0", a.ID)
	_, toC := tunnelForward(t, b, "/x/c", "/ip4/127.0.0.1/tcp/0", c.ID)

	held := hold(t, toA)
	a.Kill()
	if err := closedWithin(held, time.Second); err != nil {
		t.Fatalf("after SIGKILL of the listening daemon: %v", err)
	}
	// b still serves: its API answers and its other tunnel works.
	ok(t, b.Repo, "id")
	if err := request(dial(t, toC), []byte("still there")); err != nil {
		t.Fatalf("other tunnel after the kill: %v", err)
	}
	// New connections to the dead peer fail fast instead of hanging.
	if err := dialEndsWithin(toA, []byte{modeEcho}, 35*time.Second); err != nil {
		t.Fatalf("connection to the killed peer: %v", err)
	}
	b.Stop()
	c.Stop()
}

func TestTunnelCloseLsAndStreamsFilters(t *testing.T) {
	a, b := tunnelPair(t)
	s1, s2 := startTarget(t, false), startTarget(t, false)
	tunnelListen(t, a, "/x/one", s1.maddr)
	tunnelListen(t, a, "/x/two", s2.maddr)
	f1, addr1 := tunnelForward(t, b, "/x/one", "/ip4/127.0.0.1/tcp/0", a.ID)
	f2, addr2 := tunnelForward(t, b, "/x/two", "/ip4/127.0.0.1/tcp/0", a.ID)

	one1, one2, two := hold(t, addr1), hold(t, addr1), hold(t, addr2)
	eventually(t, 5*time.Second, func() error {
		if n := len(streams(t, b)); n != 3 {
			return fmt.Errorf("b lists %d streams, want 3", n)
		}
		return nil
	})
	if ss := streams(t, b, "--protocol", "/x/one"); len(ss) != 2 || ss[0].Protocol != "/x/one" || ss[0].Peer != a.ID || ss[0].Kind != client.TunnelKindForward {
		t.Fatalf("streams --protocol /x/one: %+v", ss)
	}
	if ss := streams(t, a, "--kind", "listen"); len(ss) != 3 {
		t.Fatalf("a's listen streams: %+v", ss)
	}
	if ss := streams(t, a, "--kind", "forward"); len(ss) != 0 {
		t.Fatalf("a has no forward streams, got %+v", ss)
	}
	if out := ok(t, b.Repo, "tunnel", "streams", "--wide"); !strings.Contains(out, a.ID) || strings.Count(out, "/x/one") != 2 {
		t.Fatalf("streams table:\n%s", out)
	}
	if ts := tunnels(t, b, "--kind", "forward", "--protocol", "/x/two"); len(ts) != 1 || ts[0].ListenAddress != f2.ListenAddress || ts[0].ActiveStreams != 1 {
		t.Fatalf("ls --protocol /x/two: %+v", ts)
	}
	out := ok(t, b.Repo, "tunnel", "ls", "--wide")
	for _, want := range []string{"forward", f1.ListenAddress, f2.ListenAddress, "/p2p/" + a.ID} {
		if !strings.Contains(out, want) {
			t.Errorf("ls table lacks %q:\n%s", want, out)
		}
	}

	// streams close <id> resets one connection, on both ends.
	id := streams(t, b, "--protocol", "/x/two")[0].ID
	if out := ok(t, b.Repo, "tunnel", "streams", "close", fmt.Sprint(id)); !strings.Contains(out, "closed 1 stream") {
		t.Fatalf("streams close: %q", out)
	}
	if err := closedWithin(two, 2*time.Second); err != nil {
		t.Fatalf("after streams close %d: %v", id, err)
	}
	fails(t, b.Repo, []string{fmt.Sprint(id)}, "tunnel", "streams", "close", fmt.Sprint(id))

	// Filters are ANDed: this protocol is not on that address. Closing
	// nothing is an error.
	fails(t, b.Repo, []string{"no tunnel matched", "warren tunnel ls"}, "tunnel", "close", "--protocol", "/x/one", "--listen-address", f2.ListenAddress)
	if out := ok(t, b.Repo, "tunnel", "close", "--protocol", "/x/one", "--target-address", "/p2p/"+a.ID); !strings.Contains(out, "closed 1 tunnel and 2 streams") {
		t.Fatalf("close --protocol /x/one: %q", out)
	}
	for _, c := range []net.Conn{one1, one2} {
		if err := closedWithin(c, 2*time.Second); err != nil {
			t.Fatalf("stream of a closed tunnel: %v", err)
		}
	}
	if c, err := net.DialTimeout("tcp", addr1, time.Second); err == nil {
		c.Close()
		t.Fatalf("closed forward still accepts on %s", addr1)
	}
	if ts := tunnels(t, b); len(ts) != 1 || ts[0].Protocol != "/x/two" {
		t.Fatalf("after close: %+v", ts)
	}
	// The other tunnel still works.
	if err := request(dial(t, addr2), []byte("two")); err != nil {
		t.Fatal(err)
	}

	// On the listener side: by target address, then streams close --all and close --all.
	hold(t, addr2)
	eventually(t, 5*time.Second, func() error {
		if n := len(streams(t, a)); n != 1 {
			return fmt.Errorf("a lists %d streams, want 1", n)
		}
		return nil
	})
	if out := ok(t, a.Repo, "tunnel", "streams", "close", "--all"); !strings.Contains(out, "closed 1 stream") {
		t.Fatalf("streams close --all: %q", out)
	}
	if out := ok(t, a.Repo, "tunnel", "close", "--target-address", s1.maddr); !strings.Contains(out, "closed 1 tunnel and 0 streams") {
		t.Fatalf("close --target-address: %q", out)
	}
	if out := ok(t, a.Repo, "tunnel", "close", "--all"); !strings.Contains(out, "closed 1 tunnel and 0 streams") {
		t.Fatalf("close --all: %q", out)
	}
	if ts := tunnels(t, a); len(ts) != 0 {
		t.Fatalf("a after close --all: %+v", ts)
	}
	a.Stop()
	b.Stop()
}

func TestTunnelUDP(t *testing.T) {
	a, b := tunnelPair(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { pc.Close(); wg.Wait() }()
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	})
	m, _ := manet.FromNetAddr(pc.LocalAddr())
	info := tunnelListen(t, a, "/x/udp", m.String())
	if info.Transport != tunnel.TransportUDP {
		t.Fatalf("listen on a /udp/ target: %+v", info)
	}
	fwd, addr := tunnelForward(t, b, "/x/udp", "/ip4/127.0.0.1/udp/0", a.ID)
	if !strings.Contains(fwd.ListenAddress, "/udp/") {
		t.Fatalf("forward: %+v", fwd)
	}
	// Two clients (two source addresses, two streams), datagram boundaries kept.
	for client := range 2 {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 65536)
		for i, size := range []int{1, 0, 1200, 60000, 17} {
			msg := bytes.Repeat([]byte{byte('a' + client)}, size)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d datagram %d (%d bytes): %v", client, i, size, err)
			}
			if want := append([]byte("echo:"), msg...); !bytes.Equal(buf[:n], want) {
				t.Fatalf("client %d datagram %d: got %d bytes, want %d", client, i, n, len(want))
			}
		}
	}
	if ss := streams(t, b, "--protocol", "/x/udp"); len(ss) != 2 {
		t.Errorf("want one stream per UDP client, got %+v", ss)
	}
	a.Stop()
	b.Stop()
}

func TestTunnelBadInput(t *testing.T) {
	d := startDaemon(t, newRepo(t))
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := peer.IDFromPrivateKey(key)
	tcp := "/ip4/127.0.0.1/tcp/9"

	fails(t, d.Repo, []string{`"/ssh"`, "/x/", "--allow-custom-protocol"}, "tunnel", "listen", "/ssh", tcp)
	fails(t, d.Repo, []string{`"/ssh"`, "/x/", "--allow-custom-protocol"}, "tunnel", "forward", "/ssh", "/ip4/127.0.0.1/tcp/0", other.String())
	fails(t, d.Repo, []string{"protocol", "empty"}, "tunnel", "listen", "", tcp)
	fails(t, d.Repo, []string{`"/ip4/nope"`, "target"}, "tunnel", "listen", "/x/a", "/ip4/nope")
	fails(t, d.Repo, []string{"/ip4/127.0.0.1/tcp/0", "non-zero"}, "tunnel", "listen", "/x/a", "/ip4/127.0.0.1/tcp/0")
	fails(t, d.Repo, []string{"/ip4/127.0.0.1/sctp/5", "expected"}, "tunnel", "listen", "/x/a", "/ip4/127.0.0.1/sctp/5")
	fails(t, d.Repo, []string{"allow[0]", `"banana"`, "peer ID"}, "tunnel", "listen", "/x/a", tcp, "--allow", "banana")
	fails(t, d.Repo, []string{"report", "UDP"}, "tunnel", "listen", "/x/a", "/ip4/127.0.0.1/udp/9", "--report-peer-id")
	fails(t, d.Repo, []string{`"banana"`, "peer ID"}, "tunnel", "forward", "/x/a", "/ip4/127.0.0.1/tcp/0", "banana")
	fails(t, d.Repo, []string{"/ip4/127.0.0.1/tcp/1", "/p2p/"}, "tunnel", "forward", "/x/a", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/1")
	fails(t, d.Repo, []string{"listen address", "DNS"}, "tunnel", "forward", "/x/a", "/dns/localhost/tcp/0", other.String())
	fails(t, d.Repo, []string{"this host"}, "tunnel", "forward", "/x/a", "/ip4/127.0.0.1/tcp/0", d.ID)
	// A missing argument: the error, then the usage line.
	if r := cli(t, d.Repo, "tunnel", "listen", "/x/a"); r.Code != 1 || r.Err != "warren: accepts 2 arg(s), received 1\nusage: warren tunnel listen <protocol> <target-multiaddr>\n" {
		t.Errorf("tunnel listen with one argument: exit %d, stderr %q", r.Code, r.Err)
	}

	// One listener per protocol, one forward per address.
	tunnelListen(t, d, "/x/dup", tcp)
	fails(t, d.Repo, []string{"/x/dup", "already has a listener"}, "tunnel", "listen", "/x/dup", "/ip4/127.0.0.1/tcp/10")
	f, _ := tunnelForward(t, d, "/x/f", "/ip4/127.0.0.1/tcp/0", other.String())
	fails(t, d.Repo, []string{f.ListenAddress, "already"}, "tunnel", "forward", "/x/g", f.ListenAddress, other.String())
	// A custom name is fine when asked for.
	if info := tunnelListen(t, d, "/ssh", tcp, "--allow-custom-protocol", "--temp"); info.Protocol != "/ssh" || !info.Temp {
		t.Fatalf("custom protocol: %+v", info)
	}

	fails(t, d.Repo, []string{"nothing to match", "--all"}, "tunnel", "close")
	fails(t, d.Repo, []string{"all (--all) cannot be combined"}, "tunnel", "close", "--all", "--protocol", "/x/dup")
	fails(t, d.Repo, []string{"stream id", "--all"}, "tunnel", "streams", "close")
	fails(t, d.Repo, []string{`"abc"`, "positive integer"}, "tunnel", "streams", "close", "abc")
	fails(t, d.Repo, []string{"999", "no active stream"}, "tunnel", "streams", "close", "999")
	fails(t, d.Repo, []string{`kind="both"`, "listen or forward"}, "tunnel", "ls", "--kind", "both")
	if len(tunnels(t, d)) != 3 {
		t.Fatalf("failed commands changed the tunnels: %+v", tunnels(t, d))
	}
	d.Stop()
	// Only the non-temp tunnels were saved.
	state, err := os.ReadFile(d.Repo + "/" + config.TunnelsFile)
	if err != nil || !strings.Contains(string(state), "/x/dup") || strings.Contains(string(state), `"/ssh"`) {
		t.Fatalf("saved state %v:\n%s", err, state)
	}
}
