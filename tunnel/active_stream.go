package tunnel

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// activeStream is one tunnelled connection: a libp2p stream joined to a
// local connection (or, for a UDP forward, to one client of the tunnel's
// shared socket). Two directions run, each calling end once when finished.
type activeStream struct {
	m      *Manager
	id     uint64
	t      *tunnel
	s      network.Stream
	local  net.Conn // nil for UDP forward sessions: the socket is the tunnel's
	peer   peer.ID
	laddr  ma.Multiaddr // nil when unknown
	raddr  ma.Multiaddr
	opened time.Time
	// release frees the connection's slot in its tunnel's limiter; called
	// by unregister. Nil for UDP forward sessions (bounded by their map).
	release func()

	bytesIn    atomic.Uint64
	bytesOut   atomic.Uint64
	lastActive atomic.Int64 // unix nanoseconds; UDP idle tracking

	ends atomic.Int32
	once sync.Once     // first of abort, shutdown or a clean finish
	done chan struct{} // closed by that first call
}

func (a *activeStream) countIn(n int) {
	a.bytesIn.Add(uint64(n))
	a.t.bytesIn.Add(uint64(n))
	a.t.met.bytesIn.Add(float64(n))
}

func (a *activeStream) countOut(n int) {
	a.bytesOut.Add(uint64(n))
	a.t.bytesOut.Add(uint64(n))
	a.t.met.bytesOut.Add(float64(n))
}

func (a *activeStream) touch() { a.lastActive.Store(time.Now().UnixNano()) }

func (a *activeStream) idleFor() time.Duration {
	return time.Since(time.Unix(0, a.lastActive.Load()))
}

// abort tears down both sides at once: the stream is reset and a TCP
// client or target gets a reset. Safe to call any number of times.
func (a *activeStream) abort(reason error) {
	a.once.Do(func() {
		close(a.done)
		_ = a.s.Reset()
		if a.local != nil {
			closeRST(a.local)
		}
		a.m.log.Debug("tunnel: connection aborted", "tunnel", a.t.id, "stream", a.id,
			"protocol", string(a.t.proto), "peer", a.peer.String(), "reason", reason)
	})
}

// shutdown closes both sides gracefully (used for UDP idle timeouts).
func (a *activeStream) shutdown() {
	a.once.Do(a.closeBoth)
}

func (a *activeStream) closeBoth() {
	close(a.done)
	_ = a.s.Close()
	if a.local != nil {
		_ = a.local.Close()
	}
}

// end is called by each of the two directions when it is finished; err
// non-nil aborts the whole connection. After the second call the
// connection is closed and unregistered.
func (a *activeStream) end(err error) {
	if err != nil {
		a.abort(err)
	}
	if a.ends.Add(1) < 2 {
		return
	}
	a.once.Do(a.closeBoth)
	a.m.unregister(a)
}

// localToStream carries local bytes to the stream; on local EOF it closes the
// stream's write side (half-close) and leaves the other direction running.
func (a *activeStream) localToStream() {
	err := a.m.bufs.copyFromLocal(a.s, a.local, a.countOut)
	if err == nil {
		err = a.s.CloseWrite()
	}
	a.end(err)
}

// streamToLocal carries stream bytes to the local connection; on stream EOF
// it closes the local write side (TCP FIN) and leaves the other direction
// running.
func (a *activeStream) streamToLocal() {
	err := a.m.bufs.copyFromReader(a.local, a.s, a.countIn)
	if err == nil {
		if cw, ok := a.local.(interface{ CloseWrite() error }); ok {
			err = cw.CloseWrite()
		}
	}
	a.end(err)
}

// splice starts the two directions of a TCP or unix tunnelled connection,
// each in a new goroutine, and returns. Fresh goroutines keep small stacks
// while the connection is idle; the caller's goroutine (deep after dialling
// and protocol negotiation) can exit.
func (a *activeStream) splice() {
	a.m.wg.Go(a.localToStream)
	a.m.wg.Go(a.streamToLocal)
}

func (a *activeStream) info() StreamInfo {
	return StreamInfo{
		ID:         a.id,
		TunnelID:   a.t.id,
		Kind:       a.t.kind,
		Protocol:   a.t.proto,
		Peer:       a.peer,
		LocalAddr:  a.laddr,
		RemoteAddr: a.raddr,
		BytesIn:    a.bytesIn.Load(),
		BytesOut:   a.bytesOut.Load(),
		Opened:     a.opened,
	}
}

// Reasons recorded when connections are torn down on request.
var (
	errStreamClosed  = errors.New("closed by request")
	errTunnelClosed  = errors.New("tunnel closed")
	errManagerClosed = errors.New("tunnel manager closed")
)
