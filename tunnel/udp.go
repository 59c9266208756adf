package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// UDP datagrams travel on a stream as frames: a 2-byte big-endian payload
// length followed by the payload. One stream carries one association (one
// client source address on the forward side).

// udpQueueLen is how many datagrams from one client may wait while its
// stream is being opened or is slow (and at most udpSessionQueueBytes);
// more are dropped and counted.
const udpQueueLen = 128

// serveUDPTarget joins a stream of a listen tunnel to a connected UDP socket
// to the target. It runs in the stream handler's goroutine.
func (m *Manager) serveUDPTarget(t *tunnel, s network.Stream, c net.Conn, laddr ma.Multiaddr, release func()) {
	a := m.register(t, s, c, laddr, release)
	if a == nil {
		_ = s.Reset()
		_ = c.Close()
		return
	}
	m.wg.Go(func() { m.udpTargetToStream(a) })
	// On stream EOF the peer sends no more datagrams; replies from the
	// target still flow back until the association is idle.
	a.end(m.framesToWriter(a, func(p []byte) error {
		_, err := a.local.Write(p)
		return err
	}))
}

// framesToWriter reads frames from a's stream and hands each payload to
// write, until stream EOF (nil error) or an error.
func (m *Manager) framesToWriter(a *activeStream, write func([]byte) error) error {
	var hdr [2]byte
	for {
		if _, err := io.ReadFull(a.s, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return &opError{op: "read frame header", err: err}
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		bp := m.bufs.get()
		payload := (*bp)[:n]
		if _, err := io.ReadFull(a.s, payload); err != nil {
			m.bufs.put(bp)
			return &opError{op: "read frame payload", err: err}
		}
		err := write(payload)
		m.bufs.put(bp)
		if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			// The target or client socket is gone; UDP has no other signal.
			return &opError{op: "write datagram", err: err}
		}
		a.countIn(n)
		a.touch()
	}
}

// udpTargetToStream frames datagrams from the target socket onto the stream
// and closes the association after UDPIdleTimeout without traffic.
func (m *Manager) udpTargetToStream(a *activeStream) {
	idle := m.opts.UDPIdleTimeout
	c := a.local
	var rc syscall.RawConn
	if sc, ok := c.(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	var bp *[]byte
	defer func() {
		if bp != nil {
			m.bufs.put(bp)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(idle))
	for {
		var cnt int
		var err error = errNoRawRead
		if rc != nil {
			cnt, err = m.bufs.rawRead(rc, &bp, 2, maxDatagram)
		}
		if errors.Is(err, errNoRawRead) {
			if bp == nil {
				bp = m.bufs.get()
			}
			cnt, err = c.Read((*bp)[2 : 2+maxDatagram])
		}
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if d := a.idleFor(); d < idle {
					_ = c.SetReadDeadline(time.Now().Add(idle - d))
					continue
				}
				m.log.Debug("tunnel: UDP association idle, closing", "tunnel", a.t.id, "stream", a.id)
				a.shutdown()
				a.end(nil)
				return
			case errors.Is(err, syscall.ECONNREFUSED):
				continue // ICMP port unreachable from the target: UDP is best effort
			}
			a.end(&opError{op: "read datagram", err: err})
			return
		}
		binary.BigEndian.PutUint16((*bp)[:2], uint16(cnt))
		if _, err := a.s.Write((*bp)[:2+cnt]); err != nil {
			a.end(&opError{op: "write frame", err: err})
			return
		}
		a.countOut(cnt)
		a.touch()
	}
}

// udpForward is the local socket of a UDP forward tunnel and its clients.
// Every client source address gets an association (a session with its own
// stream), bounded in count (maxSessions, perSource per source IP) and in
// queued bytes (per session and per forward): a flood of source ports into
// a forward whose peer is unreachable holds at most maxSessions goroutines
// and udpForwardQueueBytes of datagrams.
type udpForward struct {
	m  *Manager
	t  *tunnel
	pc *net.UDPConn

	maxSessions, perSource int
	queued                 atomic.Int64 // bytes queued in all sessions

	mu       sync.Mutex // guards the maps and every send to a session's queue
	sessions map[netip.AddrPort]*udpSession
	perIP    map[netip.Addr]int
}

type udpSession struct {
	src    netip.AddrPort
	frames chan []byte
	queued atomic.Int64 // bytes in frames
	gone   bool         // forgotten; guarded by udpForward.mu
}

func (m *Manager) startUDPForward(t *tunnel) error {
	addr, err := net.ResolveUDPAddr(t.bind.network, t.bind.address)
	if err != nil {
		return fmt.Errorf("tunnel: forward %q: listen address %s: %w", t.proto, t.bind.maddr, err)
	}
	pc, err := net.ListenUDP(t.bind.network, addr)
	if err != nil {
		return fmt.Errorf("tunnel: forward %q: listen on %s: %w", t.proto, t.bind.maddr, err)
	}
	if err := m.setBound(t, pc.LocalAddr(), func() { _ = pc.Close() }); err != nil {
		_ = pc.Close()
		return err
	}
	maxSessions := min(t.maxConns, udpMaxSessions)
	f := &udpForward{
		m: m, t: t, pc: pc,
		maxSessions: maxSessions,
		perSource:   (maxSessions + 1) / 2,
		sessions:    make(map[netip.AddrPort]*udpSession),
		perIP:       make(map[netip.Addr]int),
	}
	m.mu.Lock()
	t.udpQueued = &f.queued
	m.mu.Unlock()
	m.wg.Go(f.readLoop)
	return nil
}

// readLoop reads client datagrams and queues each, framed, to its client's
// session, starting a session for a new source address if the caps allow.
func (f *udpForward) readLoop() {
	buf := make([]byte, maxDatagram)
	for {
		n, src, err := f.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.t.ctx.Err() != nil {
				return
			}
			f.m.rlog.Warn("tunnel: UDP read failed", "tunnel", f.t.id, "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-f.t.ctx.Done():
				return
			}
			continue
		}
		f.queue(src, buf[:n])
	}
}

// sourceKey is what the per-source share of a UDP forward counts by: the
// IPv4 address, or the /64 of an IPv6 one (a host usually holds a whole
// /64, so counting single IPv6 addresses would not bound it).
func sourceKey(src netip.AddrPort) netip.Addr {
	ip := src.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// queue hands one datagram to src's session, or drops and counts it.
func (f *udpForward) queue(src netip.AddrPort, payload []byte) {
	size := int64(2 + len(payload))
	f.mu.Lock()
	defer f.mu.Unlock()
	sess := f.sessions[src]
	if sess == nil {
		ip := sourceKey(src)
		reason := ""
		switch {
		case len(f.sessions) >= f.maxSessions:
			reason = reasonUDPSessions
		case f.perIP[ip] >= f.perSource:
			reason = reasonUDPSource
		}
		if reason != "" {
			f.t.drop(1)
			f.t.refuse(reason)
			f.m.rlog.Warn("tunnel: UDP client refused: association limit reached", "tunnel", f.t.id,
				"client", src.String(), "reason", reason, "max_sessions", f.maxSessions, "per_source_ip", f.perSource)
			return
		}
		sess = &udpSession{src: src, frames: make(chan []byte, udpQueueLen)}
		f.sessions[src] = sess
		f.perIP[ip]++
		f.t.udpSessions.Add(1)
		f.m.wg.Go(func() { f.run(sess) })
	}
	if sess.queued.Load()+size > udpSessionQueueBytes || f.queued.Load()+size > udpForwardQueueBytes {
		f.t.drop(1)
		f.m.log.Debug("tunnel: UDP queue full, datagram dropped", "tunnel", f.t.id, "client", src.String())
		return
	}
	frame := make([]byte, size)
	binary.BigEndian.PutUint16(frame, uint16(len(payload)))
	copy(frame[2:], payload)
	select {
	case sess.frames <- frame:
		sess.queued.Add(size)
		f.queued.Add(size)
	default:
		f.t.drop(1)
		f.m.log.Debug("tunnel: UDP queue full, datagram dropped", "tunnel", f.t.id, "client", src.String())
	}
}

// dequeued accounts for a frame taken off sess's queue.
func (f *udpForward) dequeued(sess *udpSession, frame []byte) {
	sess.queued.Add(-int64(len(frame)))
	f.queued.Add(-int64(len(frame)))
}

// forgetLocked removes sess from the maps once and drains its queue,
// returning how many datagrams were still queued. Called with f.mu held;
// sends happen under f.mu, so none arrive after this.
func (f *udpForward) forgetLocked(sess *udpSession) int {
	if sess.gone {
		return 0
	}
	sess.gone = true
	delete(f.sessions, sess.src)
	ip := sourceKey(sess.src)
	if f.perIP[ip]--; f.perIP[ip] <= 0 {
		delete(f.perIP, ip)
	}
	f.t.udpSessions.Add(-1)
	left := 0
	for {
		select {
		case frame := <-sess.frames:
			f.dequeued(sess, frame)
			left++
		default:
			return left
		}
	}
}

// remove forgets sess; datagrams still queued are counted as dropped.
func (f *udpForward) remove(sess *udpSession) {
	f.mu.Lock()
	left := f.forgetLocked(sess)
	f.mu.Unlock()
	if left > 0 {
		f.t.drop(left)
	}
}

// run opens the stream for one client and carries its datagrams both ways.
func (f *udpForward) run(sess *udpSession) {
	s, err := f.m.openStream(f.t)
	if err != nil {
		f.remove(sess)
		if f.t.ctx.Err() == nil {
			f.t.fail(err)
			f.m.rlog.Warn("tunnel: UDP forward failed", "tunnel", f.t.id, "protocol", string(f.t.proto),
				"peer", f.t.peer.String(), "client", sess.src.String(), "err", err)
		}
		return
	}
	a := f.m.register(f.t, s, nil, netMultiaddr(net.UDPAddrFromAddrPort(sess.src)), nil)
	if a == nil {
		_ = s.Reset()
		f.remove(sess)
		return
	}
	f.m.wg.Go(func() {
		err := f.m.framesToWriter(a, func(p []byte) error {
			_, err := f.pc.WriteToUDPAddrPort(p, sess.src)
			return err
		})
		if err == nil {
			// The listen side ended the association (idle): forget it, so
			// the client's next datagram opens a new one.
			a.shutdown()
		}
		a.end(err)
	})
	f.clientToStream(a, sess)
}

// clientToStream writes the client's queued frames to the stream and ends
// the association after UDPIdleTimeout without traffic either way.
func (f *udpForward) clientToStream(a *activeStream, sess *udpSession) {
	idle := f.m.opts.UDPIdleTimeout
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case frame := <-sess.frames:
			f.dequeued(sess, frame)
			if _, err := a.s.Write(frame); err != nil {
				f.remove(sess)
				a.end(&opError{op: "write frame", err: err})
				return
			}
			a.countOut(len(frame) - 2)
			a.touch()
		case <-timer.C:
			if d := a.idleFor(); d < idle {
				timer.Reset(idle - d)
				continue
			}
			f.mu.Lock()
			if len(sess.frames) > 0 {
				f.mu.Unlock()
				timer.Reset(idle)
				continue
			}
			f.forgetLocked(sess)
			f.mu.Unlock()
			f.m.log.Debug("tunnel: UDP association idle, closing", "tunnel", f.t.id, "client", sess.src.String())
			a.shutdown()
			a.end(nil)
			return
		case <-a.done:
			f.remove(sess)
			a.end(nil)
			return
		}
	}
}

// drop counts dropped datagrams.
func (t *tunnel) drop(n int) {
	t.dropped.Add(uint64(n))
	t.met.dropped.Add(float64(n))
}
