package tunnel

import (
	"context"
	"io"
	"net"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	manet "github.com/multiformats/go-multiaddr/net"
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
// direction itself.
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
			_ = s.Reset()
			t.refused.Add(1)
			t.met.refused.Inc()
			m.log.Warn("tunnel: refused stream from a peer not in the allow list",
				"tunnel", t.id, "protocol", string(t.proto), "peer", remote.String())
			return
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, m.opts.DialTimeout)
	var d net.Dialer
	c, err := d.DialContext(ctx, t.target.network, t.target.address)
	cancel()
	if err != nil {
		_ = s.Reset()
		t.fail()
		m.log.Warn("tunnel: dial target failed", "tunnel", t.id, "protocol", string(t.proto),
			"target", t.targetAddr, "peer", remote.String(), "err", err)
		return
	}
	laddr := t.targetAddr
	if a, err := manet.FromNetAddr(c.RemoteAddr()); err == nil {
		laddr = a.String()
	}
	if t.transport == TransportUDP {
		m.serveUDPTarget(t, s, c, laddr)
		return
	}
	if t.lspec.ReportPeerID {
		if _, err := io.WriteString(c, remote.String()+"\n"); err != nil {
			_ = s.Reset()
			closeRST(c)
			t.fail()
			m.log.Warn("tunnel: report peer ID to target failed", "tunnel", t.id, "target", t.targetAddr, "err", err)
			return
		}
	}
	a := m.register(t, s, c, laddr)
	if a == nil {
		_ = s.Reset()
		closeRST(c)
		return
	}
	a.splice()
}
