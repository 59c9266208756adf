package tunnel_test

import (
	"context"
	"net"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/warren-p2p/warren/tunnel"
)

// A tunnel's handle closes it (once; again is a no-op), and the handle
// stays harmless after the manager is closed.
func TestTunnelHandleClose(t *testing.T) {
	e := newEnv(t)
	defer e.close()
	h, other := e.host(), e.host()
	m := e.manager(h, tunnel.Options{})
	ctx := context.Background()
	l, err := m.Listen(ctx, tunnel.ListenSpec{Protocol: "/x/h", Target: ma.StringCast("/ip4/127.0.0.1/tcp/9"), Temp: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.Forward(ctx, tunnel.ForwardSpec{Protocol: "/x/h", ListenAddr: ma.StringCast("/ip4/127.0.0.1/tcp/0"), Peer: other.ID(), Temp: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.List()) != 2 || l.ID == f.ID || l.Kind != tunnel.KindListen || f.Kind != tunnel.KindForward {
		t.Fatalf("tunnels %+v; handles %+v %+v", m.List(), l.Info, f.Info)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if ls := m.List(); len(ls) != 1 || ls[0].ID != l.ID {
		t.Fatalf("after closing the forward: %+v", ls)
	}
	na, err := manet.ToNetAddr(f.ListenAddress)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", na.String()); err == nil {
		c.Close()
		t.Fatal("the closed forward still accepts")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close after the manager's: %v", err)
	}
}
