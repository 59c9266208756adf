package tunnel_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"

	"github.com/warren-p2p/warren/tunnel"
)

// env owns everything a test starts; close tears it down in reverse order
// and then checks that no goroutine outlived it.
type env struct {
	t       *testing.T
	ignore  goleak.Option
	mu      sync.Mutex
	closers []func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, ignore: goleak.IgnoreCurrent()}
}

func (e *env) onClose(f func()) {
	e.mu.Lock()
	e.closers = append(e.closers, f)
	e.mu.Unlock()
}

func (e *env) close() {
	e.mu.Lock()
	cs := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	goleak.VerifyNone(e.t, e.ignore)
}

func (e *env) host(opts ...libp2p.Option) host.Host {
	e.t.Helper()
	// The default resource manager allows 64 inbound streams per protocol
	// and peer; tunnels need far more (see the package report).
	return e.hostWithLimits(rcmgr.InfiniteLimits, opts...)
}

// hostWithLimits is a loopback host whose resource manager has limits.
func (e *env) hostWithLimits(limits rcmgr.ConcreteLimitConfig, opts ...libp2p.Option) host.Host {
	e.t.Helper()
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		e.t.Fatalf("resource manager: %v", err)
	}
	opts = append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.ResourceManager(rm)}, opts...)
	h, err := libp2p.New(opts...)
	if err != nil {
		e.t.Fatalf("libp2p.New: %v", err)
	}
	e.onClose(func() { _ = h.Close() })
	return h
}

func (e *env) manager(h host.Host, opts tunnel.Options) *tunnel.Manager {
	e.t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := tunnel.NewManager(context.Background(), h, opts)
	if err != nil {
		e.t.Fatalf("NewManager: %v", err)
	}
	e.onClose(func() {
		if err := m.Close(); err != nil {
			e.t.Errorf("Manager.Close: %v", err)
		}
	})
	return m
}

// tcpPort is the TCP port of m (a forward's bound address).
func tcpPort(m ma.Multiaddr) string {
	p, _ := m.ValueForProtocol(ma.P_TCP)
	return p
}

// peerAddr is h's full multiaddr ending in /p2p/<id>.
func peerAddr(h host.Host) string {
	return h.Addrs()[0].String() + "/p2p/" + h.ID().String()
}

// tcpServer runs handler for every accepted connection; it returns the
// server multiaddr and a count of accepted connections.
func (e *env) tcpServer(handler func(c *net.TCPConn)) (string, *atomic.Int64) {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					_ = c.Close()
				}()
				handler(c.(*net.TCPConn))
			})
		}
	})
	e.onClose(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	m, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		e.t.Fatalf("FromNetAddr: %v", err)
	}
	return m.String(), &accepted
}

// echo copies everything back and half-closes when the client does.
func echo(c *net.TCPConn) {
	if _, err := io.Copy(c, c); err != nil {
		return
	}
	_ = c.CloseWrite()
	_, _ = io.Copy(io.Discard, c)
}

// dial connects to a tunnel's local TCP listen multiaddr.
func dial(t *testing.T, listenAddr string) *net.TCPConn {
	t.Helper()
	m, err := ma.NewMultiaddr(listenAddr)
	if err != nil {
		t.Fatalf("bad listen address %q: %v", listenAddr, err)
	}
	na, err := manet.ToNetAddr(m)
	if err != nil {
		t.Fatalf("listen address %q: %v", listenAddr, err)
	}
	tc, err := net.DialTimeout(na.Network(), na.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", listenAddr, err)
	}
	return tc.(*net.TCPConn)
}

// pair is a server host with a listen tunnel to target and a client host
// with a forward to it.
type pair struct {
	server, client  host.Host
	sm, cm          *tunnel.Manager
	listen, forward *tunnel.Tunnel
	proto           string
}

func (e *env) pair(target string, lspec tunnel.ListenSpec, opts tunnel.Options) *pair {
	e.t.Helper()
	ctx := context.Background()
	p := &pair{proto: "/x/test"}
	if lspec.Protocol != "" {
		p.proto = string(lspec.Protocol)
	}
	p.server = e.host()
	p.client = e.host()
	p.sm = e.manager(p.server, opts)
	p.cm = e.manager(p.client, opts)
	lspec.Protocol = protocol.ID(p.proto)
	lspec.Target = ma.StringCast(target)
	var err error
	if p.listen, err = p.sm.Listen(ctx, lspec); err != nil {
		e.t.Fatalf("Listen: %v", err)
	}
	if p.forward, err = p.cm.Forward(ctx, tunnel.ForwardSpec{
		Protocol:   protocol.ID(p.proto),
		ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		Peer:       p.server.ID(), Addrs: p.server.Addrs(),
	}); err != nil {
		e.t.Fatalf("Forward: %v", err)
	}
	return p
}

func connectHosts(t *testing.T, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// tWriter sends log lines to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
