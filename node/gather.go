package node

import (
	"context"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// gatherTLS is libp2p's TLS security transport with one change below it:
// the records crypto/tls produces for one Write (a yamux frame of up to
// 64 KiB is four 16 KiB records, more while a connection is new) reach the
// socket in one write instead of one write each. The bytes on the wire are
// the same. On loopback, where the sender's write does the receiver's TCP
// work too, this cut the daemons' CPU per GiB tunnelled by ~20% (kernel
// time by ~30%; bench/tunnel/RESULTS.md): a quarter of the send syscalls,
// and the receiving side is woken once per frame instead of once a record.
type gatherTLS struct{ *libp2ptls.Transport }

func newGatherTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*gatherTLS, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &gatherTLS{t}, nil
}

func (t *gatherTLS) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	g := &gatherConn{Conn: insecure}
	c, err := t.Transport.SecureInbound(ctx, g, p)
	if err != nil {
		return nil, err
	}
	return &gatheredConn{SecureConn: c, g: g}, nil
}

func (t *gatherTLS) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	g := &gatherConn{Conn: insecure}
	c, err := t.Transport.SecureOutbound(ctx, g, p)
	if err != nil {
		return nil, err
	}
	return &gatheredConn{SecureConn: c, g: g}, nil
}

// gatherBufs holds the buffers records are gathered in, only for the span
// of one Write, so an idle connection holds none. A yamux frame (64 KiB
// plus its header) becomes five records with their overhead.
var gatherBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 68<<10)
	return &b
}}

// gatherConn is the raw connection under crypto/tls. Between start and
// flush it collects what TLS writes and then sends it in one write.
type gatherConn struct {
	net.Conn
	mu  sync.Mutex
	buf *[]byte // non-nil while gathering
}

func (g *gatherConn) Write(b []byte) (int, error) {
	g.mu.Lock()
	if g.buf != nil {
		*g.buf = append(*g.buf, b...)
		g.mu.Unlock()
		return len(b), nil
	}
	g.mu.Unlock()
	return g.Conn.Write(b)
}

func (g *gatherConn) start() {
	g.mu.Lock()
	g.buf = gatherBufs.Get().(*[]byte)
	g.mu.Unlock()
}

// flush writes what was gathered. It holds the lock while writing, so a
// record TLS writes meanwhile (an alert from Close) cannot overtake it.
func (g *gatherConn) flush() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buf
	g.buf = nil
	var err error
	if len(*b) > 0 {
		_, err = g.Conn.Write(*b)
	}
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		gatherBufs.Put(b)
	}
	return err
}

// gatheredConn is the TLS connection whose writes are gathered. Writes are
// serialized (crypto/tls serializes them anyway), so one gathering span
// never overlaps another.
type gatheredConn struct {
	sec.SecureConn
	g   *gatherConn
	wmu sync.Mutex
}

func (c *gatheredConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Even a small write can be several records: crypto/tls starts a
	// connection with small records and grows them.
	c.g.start()
	n, err := c.SecureConn.Write(b)
	if ferr := c.g.flush(); ferr != nil && err == nil {
		// TLS took the bytes but they never reached the socket.
		return 0, ferr
	}
	return n, err
}
