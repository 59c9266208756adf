package node

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A peer that cannot be reached gets one typed line naming the peer, each
// step tried with its error, and the fix, not libp2p's multi-line error.
func TestUnreachablePeerErrorSaysWhatWasTried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hub, a := newTestNode(t), newTestNode(t)
	if err := a.Connect(ctx, addrInfo(hub)); err != nil {
		t.Fatal(err)
	}
	gone := newTestNode(t)
	goneID := gone.ID()
	_ = gone.Close()

	// Unknown to the DHT.
	err := a.Connect(ctx, peer.AddrInfo{ID: goneID})
	checkLine(t, err, "cannot reach peer "+goneID.String()+": find peer: not found in the DHT (public_network is off")
	if !strings.Contains(err.Error(), "check the peer ID") {
		t.Errorf("no fix in %q", err)
	}

	// An address that refuses: the direct dial fails, there is no relay
	// address, and hole punching is off in the test profile.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	err = connectTarget(ctx, a, "/ip4/127.0.0.1/tcp/"+itoa(port)+"/p2p/"+goneID.String())
	t.Logf("%v", err)
	checkLine(t, err, "find peer: ok; direct dial: /ip4/127.0.0.1/tcp/"+itoa(port)+": ")
	for _, want := range []string{"connection refused", "relay: the peer announces no relay address", "hole punch: off ([swarm] hole_punching = false)", "Fix: run a relay of your own"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A second try dials again rather than failing on libp2p's dial backoff.
	err = connectTarget(ctx, a, "/ip4/127.0.0.1/tcp/"+itoa(port)+"/p2p/"+goneID.String())
	if err == nil || strings.Contains(err.Error(), "backoff") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("second connect: %v", err)
	}
}

func checkLine(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("error %v is not ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// connectTarget connects to a peer given as text, as the API does.
func connectTarget(ctx context.Context, n *Node, s string) error {
	ai, err := ParseTarget(s)
	if err != nil {
		return err
	}
	return n.Connect(ctx, ai)
}
