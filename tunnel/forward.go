package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	manet "github.com/multiformats/go-multiaddr/net"
)

// startForward binds the local listener of a forward tunnel and starts its
// accept loop.
func (m *Manager) startForward(t *tunnel) error {
	if t.transport == TransportUDP {
		return m.startUDPForward(t)
	}
	var ln net.Listener
	var err error
	if t.bind.network == "unix" {
		removeStaleSocket(t.bind.address)
		ln, err = listenUnixPrivate(t.ctx, t.bind.address)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(t.ctx, t.bind.network, t.bind.address)
	}
	if err != nil {
		return fmt.Errorf("tunnel: forward %q: listen on %s: %w", t.proto, t.bind.maddr, err)
	}
	if err := m.setBound(t, ln.Addr(), func() { _ = ln.Close() }); err != nil {
		_ = ln.Close()
		return err
	}
	m.wg.Go(func() { m.acceptLoop(t, ln) })
	return nil
}

// removeStaleSocket deletes a unix socket file that no process listens on
// any more (left by a daemon that was killed), so a restored forward can bind
// it again. A socket someone still serves, or any other file, is left alone
// and the listen reports the conflict.
func removeStaleSocket(path string) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		_ = os.Remove(path)
	}
}

// setBound records the real bound address (port 0 resolved) and how to stop.
func (m *Manager) setBound(t *tunnel, addr net.Addr, stop func()) error {
	bound, err := manet.FromNetAddr(addr)
	if err != nil {
		return fmt.Errorf("tunnel: forward %q: bound address %v: %w", t.proto, addr, err)
	}
	m.mu.Lock()
	t.listenAddr = bound
	t.fspec.ListenAddr = bound
	t.stop = stop
	t.err = ""
	m.mu.Unlock()
	return nil
}

func (m *Manager) acceptLoop(t *tunnel, ln net.Listener) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil {
				return
			}
			// E.g. out of file descriptors: back off and keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.rlog.Warn("tunnel: accept failed", "tunnel", t.id, "listen", t.listenAddr, "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		// The cap is taken before the goroutine starts, so a flood of
		// clients holds at most MaxConns goroutines and streams.
		reason, release := t.lim.acquire("")
		if reason != "" {
			t.refuse(reason) // before the reset: a client that sees it finds it counted
			closeRST(c)
			m.rlog.Warn("tunnel: refused client: connection limit reached", "tunnel", t.id,
				"listen", t.listenAddr, "client", c.RemoteAddr().String(), "max_conns", t.maxConns)
			continue
		}
		m.wg.Go(func() { m.forwardConn(t, c, release) })
	}
}

// forwardConn carries one accepted connection over a new stream; release
// frees its slot in the tunnel's limiter.
func (m *Manager) forwardConn(t *tunnel, c net.Conn, release func()) {
	s, err := m.openStream(t)
	if err != nil {
		release()
		failed := t.ctx.Err() == nil
		if failed {
			t.fail(err) // before the reset: a client that sees it finds it counted
		}
		closeRST(c)
		if failed {
			m.rlog.Warn("tunnel: forward connection failed", "tunnel", t.id, "protocol", string(t.proto),
				"peer", t.peer.String(), "client", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	a := m.register(t, s, c, netMultiaddr(c.RemoteAddr()), release)
	if a == nil {
		_ = s.Reset()
		closeRST(c)
		return
	}
	a.splice()
}

// openStream opens a stream to the tunnel's peer, connecting first if
// needed. Limited (relayed) connections are allowed, but Options.Reach
// first waits for hole punching to add a direct one and refuses a relay
// whose limits (128 KiB and 2 minutes per connection on public relays)
// would cut the tunnel.
func (m *Manager) openStream(t *tunnel) (network.Stream, error) {
	if len(t.peerAddrs) > 0 {
		m.h.Peerstore().AddAddrs(t.peer, t.peerAddrs, peerstore.AddressTTL)
	}
	ctx, cancel := context.WithTimeout(t.ctx, m.opts.DialTimeout)
	defer cancel()
	ctx = network.WithAllowLimitedConn(ctx, "tunnel")
	if err := m.reach(ctx, t.peer); err != nil {
		return nil, err
	}
	s, err := m.h.NewStream(ctx, t.peer, t.proto)
	if err != nil {
		return nil, fmt.Errorf("open stream %s to peer %s: %w", t.proto, t.peer, err)
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("open stream %s to peer %s: resource manager (service %s): %w", t.proto, t.peer, ServiceName, err)
	}
	return s, nil
}

// reach makes sure p may be sent a tunnel's stream: Options.Reach, else a
// connection of any kind. A burst of client connections makes one dial:
// libp2p's swarm (and node.Connect) coalesce concurrent dials to a peer and
// cancel the shared dial only once every caller has given up, so a caller
// whose tunnel closes stops waiting at once.
func (m *Manager) reach(ctx context.Context, p peer.ID) error {
	if m.opts.Reach != nil {
		return m.opts.Reach(ctx, p) // its error names the peer
	}
	switch m.h.Network().Connectedness(p) {
	case network.Connected, network.Limited:
		return nil
	}
	if err := m.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return fmt.Errorf("connect to peer %s: %w", p, err)
	}
	return nil
}

// listenUnixPrivate listens on the unix socket path with mode 0600, so only
// this user can connect, without touching the process umask (shared by
// every goroutine). The socket is bound inside a fresh 0700 directory next
// to path, so nobody else can reach it while its mode is still the umask's;
// it is chmodded to 0600 and then hard-linked to path, which fails rather
// than replace a file that is there (link(2) never overwrites). Closing the
// listener removes path if it is still this socket.
func listenUnixPrivate(ctx context.Context, path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wt")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // only the temporary name; path is a second link
	tmp := filepath.Join(dir, "s")
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		_ = ul.Close()
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		_ = ul.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s exists: %w", path, syscall.EADDRINUSE)
		}
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ul.Close()
		return nil, err
	}
	return &privateUnixListener{UnixListener: ul, path: path, fi: fi}, nil
}

// privateUnixListener reports path as its address and removes it on Close.
type privateUnixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (l *privateUnixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *privateUnixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, lerr := os.Lstat(l.path); lerr == nil && os.SameFile(fi, l.fi) {
			_ = os.Remove(l.path)
		}
	})
	return err
}
