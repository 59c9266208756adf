//go:build unix

package tunnel

import "syscall"

// rawRead waits until rc is readable without holding a buffer, then reads
// into (*buf)[off:off+size], taking a pooled buffer if *buf is nil. If the read
// would block the buffer goes back to the pool before waiting again. It
// returns the byte count; 0 with a nil error is EOF on a stream socket and an
// empty datagram on a UDP socket.
func (p *bufPool) rawRead(rc syscall.RawConn, buf **[]byte, off, size int) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		if *buf == nil {
			*buf = p.get()
		}
		for {
			n, rerr = syscall.Read(int(fd), (**buf)[off:off+size])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK {
			p.put(*buf)
			*buf = nil
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	return n, nil
}
