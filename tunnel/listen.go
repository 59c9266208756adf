package tunnel

import (
	"context"
	"io"
	"net"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
)

// startListen registers the stream handler of a listen tunnel.
func (m *Manager) startListen(t *tunnel) error {
	if slices.Contains(m.h.Mux().Protocols(), t.proto) {
		return existsf("tunnel: listen %q: the host already has a handler for this protocol", t.proto)
	}
	m.h.SetStreamHandler(t.proto, func(s network.Stream) { m.handleInbound(t, s) })
	m.mu.Lock()
	t.stop = func() { m.h.RemoveStreamHandler(t.proto) }
	t.err = ""
	m.mu.Unlock()
	return nil
}

// handleInbound serves one stream of a listen tunnel. It runs in the
// goroutine libp2p started for the stream and carries the stream-to-target
// direction itself. Every refusal resets the stream before the target is
// dialled and is counted; its warning is rate-limited (remote input).
func (m *Manager) handleInbound(t *tunnel, s network.Stream) {
	if !m.enter() {
		_ = s.Reset()
		return
	}
	defer m.wg.Done()
	remote := s.Conn().RemotePeer()
	if t.closed.Load() {
		_ = s.Reset()
		return
	}
	if t.allow != nil {
		if _, ok := t.allow[remote]; !ok {
			// Refused before the target is dialled: not a byte reaches it.
			t.refuse(reasonAllow) // before the reset: a peer that sees it finds it counted
			_ = s.Reset()
			m.rlog.Warn("tunnel: refused stream from a peer not in the allow list",
				"tunnel", t.id, "protocol", string(t.proto), "peer", remote.String())
			return
		}
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		t.refuse(reasonService)
		_ = s.Reset()
		m.rlog.Warn("tunnel: refused stream: resource manager limit of the tunnel service",
			"tunnel", t.id, "protocol", string(t.proto), "peer", remote.String(), "err", err)
		return
	}
	reason, release := t.lim.acquire(remote)
	if reason != "" {
		t.refuse(reason)
		_ = s.Reset()
		m.rlog.Warn("tunnel: refused stream: connection limit reached",
			"tunnel", t.id, "protocol", string(t.proto), "peer", remote.String(), "reason", reason,
			"max_conns", t.maxConns, "per_peer", t.lim.perPeer)
		return
	}
	owned := true // until register takes release over
	defer func() {
		if owned {
			release()
		}
	}()
	if t.target.transport == TransportUnix {
		// Re-checked at each dial: a directory on the path may have been
		// replaced by a symlink into the repo since the tunnel was made.
		if err := m.checkUnixPath("target", t.target); err != nil {
			t.fail(err)
			_ = s.Reset()
			m.rlog.Warn("tunnel: target refused", "tunnel", t.id, "protocol", string(t.proto), "err", err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, m.opts.DialTimeout)
	var d net.Dialer
	c, err := d.DialContext(ctx, t.target.network, t.target.address)
	cancel()
	if err != nil {
		t.fail(err)
		_ = s.Reset()
		m.rlog.Warn("tunnel: dial target failed", "tunnel", t.id, "protocol", string(t.proto),
			"target", t.targetAddr, "peer", remote.String(), "err", err)
		return
	}
	laddr := netMultiaddr(c.RemoteAddr())
	if laddr == nil {
		laddr = t.targetAddr
	}
	if t.transport == TransportUDP {
		owned = false
		m.serveUDPTarget(t, s, c, laddr, release)
		return
	}
	if t.lspec.ReportPeerID {
		if _, err := io.WriteString(c, remote.String()+"\n"); err != nil {
			t.fail(err)
			_ = s.Reset()
			closeRST(c)
			m.rlog.Warn("tunnel: report peer ID to target failed", "tunnel", t.id, "target", t.targetAddr, "err", err)
			return
		}
	}
	owned = false
	a := m.register(t, s, c, laddr, release)
	if a == nil {
		_ = s.Reset()
		closeRST(c)
		return
	}
	a.splice()
}
