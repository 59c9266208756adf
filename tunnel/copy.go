package tunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

const (
	// bigBufSize is the pooled buffer used while data flows.
	bigBufSize = 128 << 10
	// smallBufSize is what an idle stream reader holds while blocked.
	smallBufSize = 1 << 10
	// maxDatagram is the largest UDP payload a frame can carry.
	maxDatagram = 65535
)

// errNoRawRead reports that readiness-based reading is unavailable.
var errNoRawRead = errors.New("raw read not supported")

// bufPool hands out large copy buffers. Buffers are only held while data is
// flowing, never while a connection is idle.
type bufPool struct {
	p    sync.Pool
	held atomic.Int64 // buffers currently out of the pool
}

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any {
		b := make([]byte, bigBufSize)
		return &b
	}}}
}

func (p *bufPool) get() *[]byte {
	p.held.Add(1)
	return p.p.Get().(*[]byte)
}

func (p *bufPool) put(b *[]byte) {
	p.held.Add(-1)
	p.p.Put(b)
}

// copyFromLocal copies src (a local TCP or unix connection) to dst until
// src reports EOF (returns nil) or an error. While src is idle no buffer is
// held: the goroutine waits for readability in the netpoller and only then
// takes a pooled buffer, returning it as soon as a read would block.
func (p *bufPool) copyFromLocal(dst io.Writer, src net.Conn, count func(int)) error {
	sc, ok := src.(syscall.Conn)
	if !ok {
		return p.copyFromReader(dst, src, count)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return p.copyFromReader(dst, src, count)
	}
	var buf *[]byte
	defer func() {
		if buf != nil {
			p.put(buf)
		}
	}()
	for {
		n, err := p.rawRead(rc, &buf, 0, bigBufSize)
		if errors.Is(err, errNoRawRead) {
			return p.copyFromReader(dst, src, count)
		}
		if err != nil {
			return &opError{op: "read local", err: err}
		}
		if n == 0 {
			return nil // EOF
		}
		if _, err := dst.Write((*buf)[:n]); err != nil {
			return &opError{op: "write stream", err: err}
		}
		count(n)
	}
}

// copyFromReader copies src to dst until EOF (returns nil) or an error. It
// blocks in Read with a small buffer; when a read fills it, data is flowing,
// so it carries those bytes into a pooled large buffer and keeps reading
// there until a read comes back short (see drain).
func (p *bufPool) copyFromReader(dst io.Writer, src io.Reader, count func(int)) error {
	small := make([]byte, smallBufSize)
	for {
		n, err := src.Read(small)
		if n == len(small) && err == nil {
			if err := p.drain(dst, src, small, count); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			continue
		}
		if n > 0 {
			if _, werr := dst.Write(small[:n]); werr != nil {
				return &opError{op: "write", err: werr}
			}
			count(n)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &opError{op: "read", err: err}
		}
	}
}

// drain writes prefix and what follows it through a pooled buffer, reading
// while reads fill the buffer, and gives the buffer back as soon as a read
// comes back short (what was buffered has been drained). It never sets a
// read deadline on src: yamux sends a stream's window update under the read
// deadline, and an update lost to an expired deadline leaves the sender
// without credit for good (a stalled tunnel, seen with 100 concurrent
// transfers under -race). The cost: a read that exactly fills the buffer
// just before src goes idle keeps the buffer until the next data or the end
// of the stream.
func (p *bufPool) drain(dst io.Writer, src io.Reader, prefix []byte, count func(int)) error {
	bp := p.get()
	defer p.put(bp)
	buf := *bp
	fill := copy(buf, prefix)
	for {
		n, err := src.Read(buf[fill:])
		full := fill+n == len(buf)
		if total := fill + n; total > 0 {
			if _, werr := dst.Write(buf[:total]); werr != nil {
				return &opError{op: "write", err: werr}
			}
			count(total)
		}
		fill = 0
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return &opError{op: "read", err: err}
		}
		if !full {
			return nil
		}
	}
}

// opError names which side of a copy failed, for logs.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// closeRST closes c; for TCP the peer gets a reset rather than a FIN, so an
// aborted tunnel is never mistaken for a clean end of data.
func closeRST(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
