//go:build !unix

package tunnel

import "syscall"

// rawRead is not available on this platform; callers fall back to Read.
func (p *bufPool) rawRead(rc syscall.RawConn, buf **[]byte, off, size int) (int, error) {
	return 0, errNoRawRead
}
