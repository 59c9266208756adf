package msg

import (
	"context"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// The service works over any host.Host: here mocknet's in-memory hosts, with
// a request/response and a plain message in both directions.
func TestMocknetHosts(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	ha, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	a := newService(t, ha, Options{Network: "mock"})
	b := newService(t, hb, Options{Network: "mock"})
	if _, err := b.Handle("ping", func(ctx context.Context, m *Message) ([]byte, error) {
		return append([]byte("pong:"), m.Payload...), nil
	}); err != nil {
		t.Fatal(err)
	}
	subA, err := a.Subscribe("note", SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	r, err := a.Request(ctx, hb.ID(), "ping", []byte("1"))
	if err != nil || string(r.Payload) != "pong:1" {
		t.Fatalf("request: %v %v", r, err)
	}
	if err := b.Send(ctx, ha.ID(), "note", []byte("hi"), SendOptions{Priority: Low}); err != nil {
		t.Fatal(err)
	}
	m, err := subA.Next(ctx)
	if err != nil || string(m.Payload) != "hi" || m.From != hb.ID() {
		t.Fatalf("note: %v %v", m, err)
	}
}
