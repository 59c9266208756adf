package tunnel_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/warren-p2p/warren/tunnel"

	"github.com/warren-p2p/warren/internal/testutil"
)

// udpEcho sends every datagram back to its sender, prefixed with "echo:".
func (e *env) udpEcho() string {
	e.t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		e.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	})
	e.onClose(func() { pc.Close(); wg.Wait() })
	m, _ := manet.FromNetAddr(pc.LocalAddr())
	return m.String()
}

func udpDial(t *testing.T, listenAddr string) *net.UDPConn {
	t.Helper()
	m, err := ma.NewMultiaddr(listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	na, err := manet.ToNetAddr(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, na.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roundTrip(t *testing.T, c *net.UDPConn, payload []byte) {
	t.Helper()
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write %d bytes: %v", len(payload), err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 70000)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read reply to %d-byte datagram: %v", len(payload), err)
	}
	if want := append([]byte("echo:"), payload...); !bytes.Equal(buf[:n], want) {
		t.Fatalf("reply of %d bytes does not match the %d-byte datagram", n, len(payload))
	}
}

func TestUDPRoundTrip(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	target := e.udpEcho()
	server, client := e.host(), e.host()
	opts := tunnel.Options{UDPIdleTimeout: 500 * time.Millisecond}
	sm := e.manager(server, opts)
	cm := e.manager(client, opts)
	l, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/dns", Target: ma.StringCast(target)})
	if err != nil {
		t.Fatal(err)
	}
	if l.Transport != tunnel.TransportUDP {
		t.Errorf("listen transport %q, want udp", l.Transport)
	}
	f, err := cm.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/dns", ListenAddr: ma.StringCast("/ip4/127.0.0.1/udp/0"), Peer: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 60000)
	_, _ = rand.Read(big)
	c1 := udpDial(t, f.ListenAddress.String())
	defer c1.Close()
	for _, p := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{7}, 1400), big} {
		roundTrip(t, c1, p)
	}
	c2 := udpDial(t, f.ListenAddress.String())
	defer c2.Close()
	roundTrip(t, c2, []byte("second client"))
	// One stream per client source address.
	if n := len(cm.Streams()); n != 2 {
		t.Errorf("client side has %d streams, want 2 (one per source address)", n)
	}
	if n := len(sm.Streams()); n != 2 {
		t.Errorf("server side has %d streams, want 2", n)
	}
	wantOut := uint64(5 + 0 + 1400 + 60000 + len("second client"))
	testutil.Eventually(t, 10*time.Second, "byte counters", func() bool {
		in := cm.List()[0]
		return in.BytesOut == wantOut && in.BytesIn == wantOut+5*5
	})
	// Idle associations close on both sides, and a new datagram opens a new one.
	testutil.Eventually(t, 10*time.Second, "idle UDP streams to close", func() bool { return len(cm.Streams()) == 0 && len(sm.Streams()) == 0 })
	roundTrip(t, c1, []byte("after idle"))
	if got := cm.List()[0].Opened; got != 3 {
		t.Errorf("Opened = %d, want 3", got)
	}
}

// A UDP listener speaks the documented frame format to any stream; after
// the stream's write side closes, replies still flow back until idle.
func TestUDPFramingAndHalfClose(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	ctx := context.Background()
	target := e.udpEcho()
	server, client := e.host(), e.host()
	sm := e.manager(server, tunnel.Options{UDPIdleTimeout: 300 * time.Millisecond})
	if _, err := sm.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/u", Target: ma.StringCast(target)}); err != nil {
		t.Fatal(err)
	}
	connectHosts(t, client, server)
	s, err := client.NewStream(ctx, server.ID(), "/x/u")
	if err != nil {
		t.Fatal(err)
	}
	// One frame by hand, then EOF.
	if _, err := s.Write(append([]byte{0, 2}, 'h', 'i')); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 2+len("echo:hi"))
	if _, err := s.Read(hdr); err != nil {
		t.Fatalf("read framed reply: %v", err)
	}
	if string(hdr[2:]) != "echo:hi" || hdr[0] != 0 || int(hdr[1]) != len("echo:hi") {
		t.Fatalf("framed reply %q", hdr)
	}
	testutil.Eventually(t, 10*time.Second, "association to end when idle", func() bool { return len(sm.Streams()) == 0 })
	if _, err := s.Read(hdr); err == nil {
		t.Fatal("stream still open after the association ended")
	}
	_ = s.Close()
}
