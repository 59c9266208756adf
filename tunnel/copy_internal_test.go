package tunnel

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/warren-p2p/warren/internal/testutil"
)

// lockedBuffer is a goroutine-safe bytes.Buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// A stream-side reader that has drained what arrived must not keep a pooled
// buffer while it then sits idle.
func TestCopyFromReaderReleasesBufferWhenIdle(t *testing.T) {
	p := newBufPool()
	src, w := net.Pipe()
	defer w.Close()
	var dst lockedBuffer
	done := make(chan error, 1)
	go func() { done <- p.copyFromReader(&dst, src, func(int) {}) }()

	// More than the small buffer, so the copy takes a pooled one, then a
	// short read: the data has been drained.
	if _, err := w.Write(make([]byte, smallBufSize+5)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "first chunk", func() bool { return dst.Len() == smallBufSize+5 })
	testutil.Eventually(t, 5*time.Second, "pooled buffer to be returned while idle", func() bool { return p.held.Load() == 0 })

	// Bulk data still flows after the idle period.
	data := make([]byte, 3*bigBufSize+17)
	_, _ = rand.Read(data)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "bulk data", func() bool { return dst.Len() == smallBufSize+5+len(data) })
	testutil.Eventually(t, 5*time.Second, "buffer returned after bulk", func() bool { return p.held.Load() == 0 })
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("copy ended with %v, want nil at EOF", err)
	}
	if !bytes.Equal(dst.b.Bytes()[smallBufSize+5:], data) {
		t.Fatal("copied data differs")
	}
}

// The local side waits for readability without a buffer.
func TestCopyFromLocalHoldsNoBufferWhenIdle(t *testing.T) {
	p := newBufPool()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var dst lockedBuffer
	done := make(chan error, 1)
	go func() { done <- p.copyFromLocal(&dst, server, func(int) {}) }()

	time.Sleep(20 * time.Millisecond)
	if n := p.held.Load(); n != 0 {
		t.Fatalf("%d buffers held before any data", n)
	}
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	if _, err := client.Write(data); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "data", func() bool { return dst.Len() == len(data) })
	testutil.Eventually(t, 5*time.Second, "buffer returned while idle", func() bool { return p.held.Load() == 0 })
	_ = client.(*net.TCPConn).CloseWrite()
	if err := <-done; err != nil {
		t.Fatalf("copy ended with %v, want nil at EOF", err)
	}
	if !bytes.Equal(dst.b.Bytes(), data) {
		t.Fatal("copied data differs")
	}
}

// deadlineRecorder is a reader that fails the test if anyone sets a read
// deadline on it.
type deadlineRecorder struct {
	t *testing.T
	r *bytes.Reader
}

func (d *deadlineRecorder) Read(p []byte) (int, error) { return d.r.Read(p) }
func (d *deadlineRecorder) SetReadDeadline(time.Time) error {
	d.t.Error("the stream copy set a read deadline: yamux sends window updates under it, and a lost update stalls the stream for good")
	return nil
}

// The stream side of a copy must never set read deadlines on the stream.
func TestCopyFromReaderSetsNoDeadline(t *testing.T) {
	p := newBufPool()
	data := make([]byte, 5*bigBufSize+3)
	_, _ = rand.Read(data)
	var dst lockedBuffer
	if err := p.copyFromReader(&dst, &deadlineRecorder{t: t, r: bytes.NewReader(data)}, func(int) {}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.b.Bytes(), data) {
		t.Fatal("copied data differs")
	}
}

func TestUDPSourceKeyGroupsIPv6By64(t *testing.T) {
	a := sourceKey(netip.MustParseAddrPort("[2001:db8:1:2:aaaa::1]:5000"))
	b := sourceKey(netip.MustParseAddrPort("[2001:db8:1:2:bbbb::9]:6000"))
	c := sourceKey(netip.MustParseAddrPort("[2001:db8:1:3::1]:5000"))
	if a != b || a == c {
		t.Fatalf("IPv6 sources: %v %v %v; want the first two equal (same /64), the third apart", a, b, c)
	}
	v4 := sourceKey(netip.MustParseAddrPort("192.0.2.1:53"))
	mapped := sourceKey(netip.MustParseAddrPort("[::ffff:192.0.2.1]:53"))
	if v4 != mapped || v4 == sourceKey(netip.MustParseAddrPort("192.0.2.2:53")) {
		t.Fatalf("IPv4 sources: %v %v", v4, mapped)
	}
}
